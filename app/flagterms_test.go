package app

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"testing"

	"github.com/kfash-tf/kfash-tf/graphs"
	"github.com/kfash-tf/kfash-tf/graphs/runs"
)

// The library's typed errors reach the user worded in the flags that
// change them, once, and stay typed.
func TestInFlagTerms(t *testing.T) {
	noGPU := &graphs.NoGPUError{Devices: []string{"/device:CPU:0"}}
	nonFinite := &graphs.NonFiniteError{Loss: math.NaN(), Step: 12, Epoch: 2, Batch: 3}
	untrained := &graphs.UntrainedRunError{Dir: "runs/a", Err: fmt.Errorf("%w 'best' in runs/a/checkpoints", runs.ErrNoCheckpoint)}
	missing := &graphs.MissingCheckpointError{Dir: "runs/a", Checkpoint: "best"}
	exists := &graphs.ExportExistsError{Path: "export/a/1"}
	other := fmt.Errorf("reading: %w", errors.New("disk"))
	cases := []struct {
		err  error
		want string
	}{
		{noGPU, "--device gpu: this TensorFlow library sees no GPU (devices: /device:CPU:0); use a GPU build via LIBTENSORFLOW_DIR"},
		{nonFinite, "non-finite loss NaN at step 12 (epoch 2, batch 3): the last good checkpoint is kept; try a lower --lr"},
		{untrained, "run runs/a has no checkpoint to serve (no checkpoint 'best' in runs/a/checkpoints): train it first, e.g. kfash-tf train --resume runs/a"},
		{missing, "run runs/a has no 'best' checkpoint (try --checkpoint last)"},
		{exists, "export/a/1 already exists: export as another --version, or remove it first"},
		{fmt.Errorf("wrapped: %w", exists), "wrapped: export/a/1 already exists: export as another --version, or remove it first"},
		{other, "reading: disk"},
	}
	for _, c := range cases {
		got := inFlagTerms(c.err)
		if got.Error() != c.want {
			t.Errorf("%q, want %q", got, c.want)
		}
		if again := inFlagTerms(got); again.Error() != c.want {
			t.Errorf("worded twice: %q", again)
		}
		if !errors.Is(got, c.err) {
			t.Errorf("%q no longer wraps %T", got, c.err)
		}
	}
	if !errors.Is(inFlagTerms(nonFinite), graphs.ErrNonFinite) || !errors.Is(inFlagTerms(noGPU), graphs.ErrNoGPU) {
		t.Error("the sentinels are lost")
	}
	if !errors.Is(inFlagTerms(untrained), runs.ErrNoCheckpoint) || !errors.Is(inFlagTerms(missing), runs.ErrNoCheckpoint) ||
		!errors.Is(inFlagTerms(exists), fs.ErrExist) {
		t.Error("the checkpoint and export sentinels are lost")
	}
	if inFlagTerms(nil) != nil {
		t.Error("nil worded")
	}
}
