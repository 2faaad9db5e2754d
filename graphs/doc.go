// Package graphs assembles the TensorFlow graphs kfash-tf runs — training,
// evaluation and serving —: the training loop and its optimizers, the
// Saver that writes and restores variables, sessions, SavedModel export,
// and Servable: a run folder or a SavedModel opened for prediction (one
// file each), answering in the serving contract of contract.go. It needs
// cgo and the TensorFlow C library.
//
// What a run folder holds (config, metrics, status, lock, checkpoint
// folders and their pointers) is package graphs/runs, plain Go that graphs
// imports: the loop reports runs.EpochResult rows, a checkpoint is written
// by runs.CheckpointDir.WriteWith with Saver.SaveFunc, and the settings
// graphs consumes (runs.OptimizerConfig, runs.SessionConfig,
// runs.Schedule) are plain data there.
package graphs
