package graphs

import (
	"errors"
	"fmt"
	"strings"

	tf "github.com/galeone/tensorflow/tensorflow/go"
	pb "github.com/galeone/tensorflow/tensorflow/go/core/protobuf/for_core_protos_go_proto"
	"google.golang.org/protobuf/proto"

	"github.com/kfash-tf/kfash-tf/graphs/runs"
)

// SessionOptions returns the session options (a serialised ConfigProto)
// for c, usable with tf.NewSession and tf.LoadSavedModel.
func SessionOptions(c runs.SessionConfig) (*tf.SessionOptions, error) {
	cfg, err := configProto(c)
	if err != nil {
		return nil, err
	}
	data, err := proto.Marshal(cfg)
	if err != nil {
		return nil, fmt.Errorf("session config: %w", err)
	}
	return &tf.SessionOptions{Config: data}, nil
}

// configProto is the ConfigProto of c.
func configProto(c runs.SessionConfig) (*pb.ConfigProto, error) {
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
	case runs.DeviceCPU:
		// Hiding the GPUs from this session is the one switch that keeps
		// every op on the CPU whatever the graph asks for.
		cfg.DeviceCount = map[string]int32{"GPU": 0}
	default:
		// Grow GPU memory as needed instead of reserving all of it up
		// front, so evaluation can share a GPU with a training run; and
		// only the GPUs asked for (one task per GPU on a machine with
		// several). The data stays NHWC: grappler's layout optimizer
		// converts convolutions to cuDNN's preferred layout.
		cfg.GpuOptions = &pb.GPUOptions{AllowGrowth: true, VisibleDeviceList: strings.ReplaceAll(c.GPUs, " ", "")}
	}
	return cfg, nil
}

// NewSession opens a session on g configured by cfg. With Device "gpu" it
// fails with a *NoGPUError unless TensorFlow sees a GPU.
func NewSession(g *tf.Graph, cfg runs.SessionConfig) (*tf.Session, error) {
	return newSession(g, cfg, nil)
}

// NewReplicaSession is NewSession for a session that runs on r's server,
// where graphs with collective ops run; its ops are placed on r's task.
func NewReplicaSession(g *tf.Graph, cfg runs.SessionConfig, r *Replica) (*tf.Session, error) {
	return newSession(g, cfg, r)
}

// newSession opens a session on g: in-process when r is nil, else on r's
// server.
func newSession(g *tf.Graph, cfg runs.SessionConfig, r *Replica) (*tf.Session, error) {
	var opts *tf.SessionOptions
	var err error
	if r == nil {
		opts, err = SessionOptions(cfg)
	} else {
		opts, err = r.sessionOptions(cfg)
	}
	if err != nil {
		return nil, err
	}
	sess, err := tf.NewSession(g, opts)
	if err != nil {
		return nil, fmt.Errorf("opening a TensorFlow session: %w", err)
	}
	if cfg.Device != runs.DeviceGPU {
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
	missing, detail := diagnoseNoGPU()
	return nil, &NoGPUError{Devices: names, Missing: missing, Detail: detail}
}

// ErrNoGPU is the sentinel of a NoGPUError.
var ErrNoGPU = errors.New("this TensorFlow library sees no GPU")

// NoGPUError is NewSession's error for a session pinned to the GPU
// (runs.DeviceGPU) when TensorFlow sees none, with what is missing: the
// libraries (a CPU-only build of the library, or cuDNN not loadable), the
// driver (libcuda.so.1 not loadable) or a device (none visible).
type NoGPUError struct {
	Devices []string // the devices TensorFlow sees
	Missing string   // MissingLibraries, MissingDriver or MissingDevice ("" unknown)
	Detail  string   // what was found missing, in words
}

// Error names what is missing and the devices TensorFlow sees instead.
func (e *NoGPUError) Error() string {
	msg := fmt.Sprintf("%v (devices: %s)", ErrNoGPU, strings.Join(e.Devices, ", "))
	if e.Missing != "" {
		msg += fmt.Sprintf("; missing: %s: %s", e.Missing, e.Detail)
	}
	return msg
}

// Unwrap returns ErrNoGPU.
func (e *NoGPUError) Unwrap() error { return ErrNoGPU }

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
