// Package kfashion imports AI Hub's K-Fashion download (one JSON label per
// photo, as folders and/or zip archives with CP949 names) into the
// Train/Validation class folders that package augment reads: see Import.
//
// It speaks of options, not of command-line flags: errors that a caller
// may want to restate in its own terms are typed (SettingsError).
package kfashion
