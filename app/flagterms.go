package app

import (
	"errors"

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
		return &flagWorded{msg: "--device gpu: " + err.Error(), err: err}
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
