package runs

import (
	"fmt"
	"strconv"
	"strings"
)

// Devices a session can be restricted to (SessionConfig.Device).
const (
	DeviceAny = ""    // TensorFlow's placement: a GPU when the library has one
	DeviceCPU = "cpu" // never a GPU, even with a GPU build of the library
	DeviceGPU = "gpu" // require a GPU: an error if the library sees none
)

// SessionConfig configures the TensorFlow sessions kfash-tf opens (turned
// into session options by graphs.SessionOptions).
type SessionConfig struct {
	IntraOpThreads int    `json:"intra_op_threads,omitempty"` // threads inside one op (a MatMul); 0: TensorFlow's default, the core count
	InterOpThreads int    `json:"inter_op_threads,omitempty"` // independent ops run at once; 0: TensorFlow's default
	Device         string `json:"device,omitempty"`           // "" (TensorFlow decides), "cpu" or "gpu"
	GPUs           string `json:"gpus,omitempty"`             // the GPUs this process may use, e.g. "0,1" (CUDA ordinals); "": all
}

// Validate checks the thread counts and the device.
func (c SessionConfig) Validate() error {
	if c.IntraOpThreads < 0 || c.InterOpThreads < 0 {
		// TensorFlow reads a negative inter-op count as "run every op in the
		// caller's thread", which nobody asks for by typing -1.
		return fmt.Errorf("thread counts must not be negative (0: TensorFlow's default), got intra-op %d, inter-op %d",
			c.IntraOpThreads, c.InterOpThreads)
	}
	if c.GPUs != "" {
		for _, g := range strings.Split(c.GPUs, ",") {
			if n, err := strconv.Atoi(strings.TrimSpace(g)); err != nil || n < 0 {
				return fmt.Errorf("GPU list %q: want GPU numbers separated by commas, e.g. 0,1", c.GPUs)
			}
		}
	}
	switch c.Device {
	case DeviceAny, DeviceCPU, DeviceGPU:
		return nil
	}
	return fmt.Errorf("unknown device %q: choose cpu or gpu (or nothing to let TensorFlow decide)", c.Device)
}
