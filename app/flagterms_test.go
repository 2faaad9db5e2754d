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
		{noGPU, "--device gpu: this TensorFlow library sees no GPU (devices: /device:CPU:0); use a GPU build: make build TF_VARIANT=gpu, or LIBTENSORFLOW_DIR"},
		{&graphs.NoGPUError{Devices: []string{"CPU:0"}, Missing: graphs.MissingDriver, Detail: "libcuda.so.1 (the NVIDIA driver) cannot be loaded"},
			"--device gpu: this TensorFlow library sees no GPU (devices: CPU:0); missing: driver: libcuda.so.1 (the NVIDIA driver) cannot be loaded; install the NVIDIA driver (525.60.13 or newer for CUDA 12; nvidia-smi shows it), or run on the CPU without --device gpu"},
		{&graphs.NoGPUError{Devices: []string{"CPU:0"}, Missing: graphs.MissingLibraries, Detail: "cuDNN (libcudnn.so.9) cannot be loaded"},
			"--device gpu: this TensorFlow library sees no GPU (devices: CPU:0); missing: libraries: cuDNN (libcudnn.so.9) cannot be loaded; build on the CUDA variant of TensorFlow: make build TF_VARIANT=gpu (or a CUDA build via LIBTENSORFLOW_DIR), and run bin/kfash-tf, which puts the NVIDIA libraries on LD_LIBRARY_PATH"},
		{&graphs.NoGPUError{Devices: []string{"CPU:0"}, Missing: graphs.MissingDevice, Detail: "no GPU is visible"},
			"--device gpu: this TensorFlow library sees no GPU (devices: CPU:0); missing: device: no GPU is visible; check nvidia-smi, CUDA_VISIBLE_DEVICES and --gpus"},
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
