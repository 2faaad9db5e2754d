// Package graphs assembles the TensorFlow graphs kfash-tf runs — training,
// evaluation and serving —: the training loop and its optimizers, the
// Saver that writes and restores variables, sessions, SavedModel export,
// and Servable: a run folder or a SavedModel opened for prediction (one
// file each), answering in the serving contract of contract.go. It needs
// cgo and the TensorFlow C library.
//
// Synchronous data-parallel training on several processes is here too:
// the cluster, its TensorFlow servers and sessions, and the words for a
// failed peer (cluster.go); the collective ops a replica's training graph
// adds, fused gradient all-reduce, start broadcast and end-of-epoch sums
// (collective.go); and running them (replica.go, and Fit in loop.go).
//
// What a run folder holds (config, metrics, status, lock, checkpoint
// folders and their pointers) is package graphs/runs, plain Go that graphs
// imports: the loop reports runs.EpochResult rows, a checkpoint is written
// by runs.CheckpointDir.WriteWith with Saver.SaveFunc, and the settings
// graphs consumes (runs.OptimizerConfig, runs.SessionConfig,
// runs.Schedule) are plain data there.
package graphs
