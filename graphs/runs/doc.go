// Package runs is everything about a run folder, the files `kfash-tf
// train` writes and every other command reads: pure Go, without
// TensorFlow, so that readers such as the report build with
// CGO_ENABLED=0. The TensorFlow side (package graphs) builds and trains
// the graphs and writes a checkpoint's variables through a SaveFunc;
// graphs imports runs, never the reverse.
//
// A run folder holds:
//
//	config.json           Config: every setting of the run (network, data, optimizer, schedule, …)
//	metrics.csv           one EpochResult a line, for spreadsheets (no confusion matrix)
//	metrics.jsonl         the same rows as JSON, with the validation confusion matrix
//	status.json           Status: running, finished, interrupted or failed (crashed is inferred)
//	.lock                 held (flock) by the one process writing the run (LockDir)
//	checkpoints/
//	  epoch-NNNN/         one checkpoint: variables.index, variables.data-*, state.json (CheckpointState)
//	  last.json           pointer to the folder a resume continues from
//	  best.json           pointer to the best epoch's folder (by Config.Select)
//
// Non-finite numbers. A diverged run has NaN or infinite losses, which JSON
// cannot carry. Every file written here spells them the one way:
// the JSON strings "NaN", "+Inf" and "-Inf" in metrics.jsonl and
// state.json (lossless: the value reads back as it was), and NaN, +Inf and
// -Inf in metrics.csv. Readers accept these strings and plain numbers.
// kfash-tf before this package wrote -1 in metrics.jsonl instead, so a -1
// read back there stands for "not a number" (no metric here is negative
// otherwise); the report treats both as missing.
//
// Crash safety: every file is written through internal/atomicfile
// (replaced whole, or appended a synced line at a time), and a checkpoint
// folder is complete on disk before a pointer names it; see CheckpointDir.
// Run and CheckpointDir carry an internal/crashpoint hook for the tests
// that kill a writer at each of these steps.
package runs
