// Package graphs assembles the TensorFlow graphs kfash-tf runs — training,
// evaluation and serving —, their optimizers, checkpoints and SavedModel
// files.
package graphs
