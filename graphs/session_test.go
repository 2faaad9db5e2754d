package graphs_test

import (
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"

	tf "github.com/galeone/tensorflow/tensorflow/go"
	pb "github.com/galeone/tensorflow/tensorflow/go/core/protobuf/for_core_protos_go_proto"
	"github.com/galeone/tensorflow/tensorflow/go/op"
	"google.golang.org/protobuf/proto"

	"github.com/kfash-tf/kfash-tf/graphs"
	"github.com/kfash-tf/kfash-tf/graphs/runs"
)

// A session limited to one intra-op thread (and kept off any GPU) runs a
// MatMul correctly.
func TestNewSessionRunsMatMul(t *testing.T) {
	for _, cfg := range []runs.SessionConfig{
		{IntraOpThreads: 1, InterOpThreads: 1, Device: runs.DeviceCPU},
		{IntraOpThreads: 1},
		{},
	} {
		s := op.NewScope()
		a := op.Const(s.SubScope("a"), [][]float32{{1, 2}, {3, 4}})
		b := op.Const(s.SubScope("b"), [][]float32{{5, 6}, {7, 8}})
		prod := op.MatMul(s, a, b)
		g, err := s.Finalize()
		if err != nil {
			t.Fatal(err)
		}
		sess, err := graphs.NewSession(g, cfg)
		if err != nil {
			t.Fatalf("%+v: %v", cfg, err)
		}
		out, err := sess.Run(nil, []tf.Output{prod}, nil)
		sess.Close()
		if err != nil {
			t.Fatalf("%+v: %v", cfg, err)
		}
		got := out[0].Value().([][]float32)
		want := [][]float32{{19, 22}, {43, 50}}
		for i := range want {
			for j := range want[i] {
				if got[i][j] != want[i][j] {
					t.Fatalf("%+v: MatMul = %v, want %v", cfg, got, want)
				}
			}
		}
	}
}

// The options carry the thread counts and, for "cpu", no GPU.
func TestSessionConfigOptions(t *testing.T) {
	cases := []struct {
		cfg        runs.SessionConfig
		intra      int32
		inter      int32
		gpusHidden bool
	}{
		{runs.SessionConfig{}, 0, 0, false},
		{runs.SessionConfig{IntraOpThreads: 2, InterOpThreads: 1, Device: "cpu"}, 2, 1, true},
		{runs.SessionConfig{IntraOpThreads: 4, Device: "gpu"}, 4, 0, false},
	}
	for _, c := range cases {
		opts, err := graphs.SessionOptions(c.cfg)
		if err != nil {
			t.Fatal(err)
		}
		var cp pb.ConfigProto
		if err := proto.Unmarshal(opts.Config, &cp); err != nil {
			t.Fatal(err)
		}
		gpus, set := cp.DeviceCount["GPU"]
		if cp.IntraOpParallelismThreads != c.intra || cp.InterOpParallelismThreads != c.inter || (set && gpus == 0) != c.gpusHidden {
			t.Errorf("%+v: ConfigProto %v", c.cfg, &cp)
		}
	}
}

// Asking for a GPU where the library has none is a clear error, not a
// silent run on the CPU.
func TestNewSessionGPUUnavailable(t *testing.T) {
	sess, err := graphs.NewSession(tf.NewGraph(), runs.SessionConfig{})
	if err != nil {
		t.Fatal(err)
	}
	devices, err := graphs.Devices(sess)
	sess.Close()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("devices: %v", devices)
	if len(devices) == 0 || !strings.Contains(strings.Join(devices, " "), "CPU:0") {
		t.Fatalf("devices %v: no CPU", devices)
	}
	if strings.Contains(strings.Join(devices, " "), "GPU") {
		t.Skip("this TensorFlow library sees a GPU")
	}
	_, err = graphs.NewSession(tf.NewGraph(), runs.SessionConfig{Device: "gpu"})
	if err == nil {
		t.Fatal("no error")
	}
	// The command that set the device words it as a flag (app).
	var noGPU *graphs.NoGPUError
	if !errors.As(err, &noGPU) || !errors.Is(err, graphs.ErrNoGPU) || !reflect.DeepEqual(noGPU.Devices, devices) {
		t.Fatalf("error %v (%T), want a *NoGPUError listing %v", err, err, devices)
	}
	// What is missing: the libraries with the CPU variant; with the CUDA
	// build on a machine without a GPU, the driver (or a device).
	want := graphs.MissingLibraries
	if lib := graphs.Library(); lib.CUDABuild {
		want = graphs.MissingDriver
		if _, err := os.Stat("/dev/nvidiactl"); err == nil {
			want = graphs.MissingDevice
		}
	}
	if noGPU.Missing != want && !(want == graphs.MissingDevice && noGPU.Missing != "") {
		t.Errorf("missing %q (%s), want %q", noGPU.Missing, noGPU.Detail, want)
	}
	for _, w := range []string{"sees no GPU", "CPU:0", "missing: " + noGPU.Missing} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not mention %q", err, w)
		}
	}
	if strings.Contains(err.Error(), "--") {
		t.Errorf("error %q names a flag: graphs has none", err)
	}
}

// Invalid configurations are refused before TensorFlow sees them.
func TestSessionConfigErrors(t *testing.T) {
	cases := []struct {
		cfg  runs.SessionConfig
		want string
	}{
		{runs.SessionConfig{Device: "tpu"}, `unknown device "tpu"`},
		{runs.SessionConfig{Device: "GPU"}, `unknown device "GPU"`},
		{runs.SessionConfig{IntraOpThreads: -1}, "must not be negative"},
		{runs.SessionConfig{InterOpThreads: -2}, "must not be negative"},
	}
	for _, c := range cases {
		_, err := graphs.NewSession(tf.NewGraph(), c.cfg)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: error %v, want %q", c.cfg, err, c.want)
		}
	}
}

// GPU sessions grow their memory and see only the GPUs asked for.
func TestSessionConfigGPUOptions(t *testing.T) {
	opts, err := graphs.SessionOptions(runs.SessionConfig{Device: "gpu", GPUs: "0, 1"})
	if err != nil {
		t.Fatal(err)
	}
	var cp pb.ConfigProto
	if err := proto.Unmarshal(opts.Config, &cp); err != nil {
		t.Fatal(err)
	}
	if g := cp.GpuOptions; g == nil || !g.AllowGrowth || g.VisibleDeviceList != "0,1" {
		t.Errorf("GPUOptions %v, want allow_growth and visible_device_list 0,1", g)
	}
	if _, err := graphs.SessionOptions(runs.SessionConfig{GPUs: "0,x"}); err == nil {
		t.Error("GPU list 0,x accepted")
	}
}
