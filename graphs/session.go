package graphs

import (
	"fmt"
	"strings"

	tf "github.com/galeone/tensorflow/tensorflow/go"
	pb "github.com/galeone/tensorflow/tensorflow/go/core/protobuf/for_core_protos_go_proto"
	"google.golang.org/protobuf/proto"
)

// Devices a session can be restricted to (SessionConfig.Device).
const (
	DeviceAny = ""    // TensorFlow's placement: a GPU when the library has one
	DeviceCPU = "cpu" // never a GPU, even with a GPU build of the library
	DeviceGPU = "gpu" // require a GPU: an error if the library sees none
)

// SessionConfig configures the TensorFlow sessions kfash-tf opens.
type SessionConfig struct {
	IntraOpThreads int    `json:"intra_op_threads,omitempty"` // threads inside one op (a MatMul); 0: TensorFlow's default, the core count
	InterOpThreads int    `json:"inter_op_threads,omitempty"` // independent ops run at once; 0: TensorFlow's default
	Device         string `json:"device,omitempty"`           // "" (TensorFlow decides), "cpu" or "gpu"
}

// Validate checks the thread counts and the device.
func (c SessionConfig) Validate() error {
	if c.IntraOpThreads < 0 || c.InterOpThreads < 0 {
		// TensorFlow reads a negative inter-op count as "run every op in the
		// caller's thread", which nobody asks for by typing -1.
		return fmt.Errorf("thread counts must not be negative (0: TensorFlow's default), got intra-op %d, inter-op %d",
			c.IntraOpThreads, c.InterOpThreads)
	}
	switch c.Device {
	case DeviceAny, DeviceCPU, DeviceGPU:
		return nil
	}
	return fmt.Errorf("unknown device %q: choose cpu or gpu (or nothing to let TensorFlow decide)", c.Device)
}

// Options returns the session options (a serialised ConfigProto) for c,
// usable with tf.NewSession and tf.LoadSavedModel.
func (c SessionConfig) Options() (*tf.SessionOptions, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	cfg := &pb.ConfigProto{
		IntraOpParallelismThreads: int32(c.IntraOpThreads),
		InterOpParallelismThreads: int32(c.InterOpThreads),
		// Ops without a GPU kernel (strings, SaveV2) then run on the CPU
		// instead of failing placement.
		AllowSoftPlacement: true,
	}
	switch c.Device {
	case DeviceCPU:
		// Hiding the GPUs from this session is the one switch that keeps
		// every op on the CPU whatever the graph asks for.
		cfg.DeviceCount = map[string]int32{"GPU": 0}
	default:
		// Grow GPU memory as needed instead of reserving all of it up
		// front, so evaluation can share a GPU with a training run.
		cfg.GpuOptions = &pb.GPUOptions{AllowGrowth: true}
	}
	data, err := proto.Marshal(cfg)
	if err != nil {
		return nil, fmt.Errorf("session config: %w", err)
	}
	return &tf.SessionOptions{Config: data}, nil
}

// NewSession opens a session on g configured by cfg. With Device "gpu" it
// fails unless TensorFlow sees a GPU.
func NewSession(g *tf.Graph, cfg SessionConfig) (*tf.Session, error) {
	opts, err := cfg.Options()
	if err != nil {
		return nil, err
	}
	sess, err := tf.NewSession(g, opts)
	if err != nil {
		return nil, fmt.Errorf("opening a TensorFlow session: %w", err)
	}
	if cfg.Device != DeviceGPU {
		return sess, nil
	}
	devs, err := sess.ListDevices()
	if err != nil {
		sess.Close()
		return nil, fmt.Errorf("listing TensorFlow devices: %w", err)
	}
	var names []string
	for _, d := range devs {
		if d.Type == "GPU" {
			return sess, nil
		}
		names = append(names, d.Name)
	}
	sess.Close()
	return nil, fmt.Errorf("--device gpu: this TensorFlow library sees no GPU (devices: %s); use a GPU build via LIBTENSORFLOW_DIR",
		strings.Join(names, ", "))
}

// Devices returns the names of the devices sess can place ops on, e.g.
// "/job:localhost/replica:0/task:0/device:CPU:0".
func Devices(sess *tf.Session) ([]string, error) {
	devs, err := sess.ListDevices()
	if err != nil {
		return nil, err
	}
	names := make([]string, len(devs))
	for i, d := range devs {
		names[i] = d.Name
	}
	return names, nil
}
