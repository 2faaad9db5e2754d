package app

import (
	"errors"
	"fmt"
	"math"
	"testing"

	"github.com/kfash-tf/kfash-tf/graphs"
)

// The library's typed errors reach the user worded in the flags that
// change them, once, and stay typed.
func TestInFlagTerms(t *testing.T) {
	noGPU := &graphs.NoGPUError{Devices: []string{"/device:CPU:0"}}
	nonFinite := &graphs.NonFiniteError{Loss: math.NaN(), Step: 12, Epoch: 2, Batch: 3}
	other := fmt.Errorf("reading: %w", errors.New("disk"))
	cases := []struct {
		err  error
		want string
	}{
		{noGPU, "--device gpu: this TensorFlow library sees no GPU (devices: /device:CPU:0); use a GPU build via LIBTENSORFLOW_DIR"},
		{nonFinite, "non-finite loss NaN at step 12 (epoch 2, batch 3): the last good checkpoint is kept; try a lower --lr"},
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
	if inFlagTerms(nil) != nil {
		t.Error("nil worded")
	}
}
