package app

import (
	"errors"
	"fmt"
	"strings"

	"github.com/kfash-tf/kfash-tf/graphs"
)

// The library packages (graphs, augment, models) know nothing of flags:
// they return typed errors, and this file words them in terms of the flags
// a user can change.

// inFlagTerms returns err with advice in flags for the typed errors of the
// library that have some; others come back unchanged. Wording an error
// twice is a no-op, so both a command and Main may call it.
func inFlagTerms(err error) error {
	var worded *flagWorded
	if err == nil || errors.As(err, &worded) {
		return err
	}
	var (
		noGPU     *graphs.NoGPUError
		untrained *graphs.UntrainedRunError
		missing   *graphs.MissingCheckpointError
		exists    *graphs.ExportExistsError
	)
	switch {
	case errors.As(err, &noGPU):
		return &flagWorded{msg: "--device gpu: " + err.Error() + noGPUAdvice(noGPU.Missing), err: err}
	case errors.As(err, &untrained): // predict and serve of a run folder
		return &flagWorded{msg: err.Error() + ", e.g. kfash-tf train --resume " + untrained.Dir, err: err}
	case errors.As(err, &missing):
		// Export resolves a missing checkpoint to this error only when the
		// run has a last one.
		return &flagWorded{msg: err.Error() + " (try --checkpoint last)", err: err}
	case errors.As(err, &exists):
		return &flagWorded{msg: err.Error() + ": export as another --version, or remove it first", err: err}
	case errors.Is(err, graphs.ErrNonFinite):
		// The loop stops before the epoch's checkpoint: the last one is of
		// the last good epoch.
		return &flagWorded{msg: err.Error() + ": the last good checkpoint is kept; try a lower --lr", err: err}
	}
	return err
}

// flagWorded is a library error with advice in flags added to its message;
// errors.Is and errors.As still see the library's error.
type flagWorded struct {
	msg string
	err error
}

// Error is the library's message with the advice.
func (e *flagWorded) Error() string { return e.msg }

// Unwrap returns the library's error.
func (e *flagWorded) Unwrap() error { return e.err }

// noGPUAdvice is what to do about a NoGPUError's missing piece.
func noGPUAdvice(missing string) string {
	switch missing {
	case graphs.MissingLibraries:
		return "; build on the CUDA variant of TensorFlow: make build TF_VARIANT=gpu (or a CUDA build via LIBTENSORFLOW_DIR), and run bin/kfash-tf, which puts the NVIDIA libraries on LD_LIBRARY_PATH"
	case graphs.MissingDriver:
		return "; install the NVIDIA driver (525.60.13 or newer for CUDA 12; nvidia-smi shows it), or run on the CPU without --device gpu"
	case graphs.MissingDevice:
		return "; check nvidia-smi, CUDA_VISIBLE_DEVICES and --gpus"
	}
	return "; use a GPU build: make build TF_VARIANT=gpu, or LIBTENSORFLOW_DIR"
}

// explainInFlagTerms words explain's library errors in its flags: the
// layers --layer may name, and that a SavedModel without the explain
// signature needs its run folder instead.
func explainInFlagTerms(err error) error {
	var layer *graphs.UnknownLayerError
	switch {
	case errors.As(err, &layer):
		return &flagWorded{msg: fmt.Sprintf("--layer %q: network %s has no such layer with a spatial feature map; the ones that do: %s",
			layer.Layer, layer.Network, strings.Join(layer.Known, ", ")), err: err}
	case errors.Is(err, graphs.ErrNoExplain):
		return &flagWorded{msg: err.Error() + ": give the run this model was exported from, or export it again with this kfash-tf", err: err}
	}
	return inFlagTerms(err)
}
