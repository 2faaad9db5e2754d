package graphs

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	tf "github.com/galeone/tensorflow/tensorflow/go"
	"github.com/galeone/tensorflow/tensorflow/go/op"

	"github.com/kfash-tf/kfash-tf/augment"
	"github.com/kfash-tf/kfash-tf/graphs/runs"
	"github.com/kfash-tf/kfash-tf/models"
	"github.com/kfash-tf/kfash-tf/tfops"
)

// The tests here run in one process, which can hold no cluster (one server
// per process, and it cannot be stopped): the collectives run in local
// sessions, as a group of one task, or of two with the second missing.
// cmd/kfash-tf's cluster tests run real clusters of processes.

func TestParseWorkersAndValidate(t *testing.T) {
	if got := ParseWorkers(" 10.0.0.1:2222, h2:2222 ,,"); !reflect.DeepEqual(got, []string{"10.0.0.1:2222", "h2:2222"}) {
		t.Errorf("ParseWorkers: %q", got)
	}
	ok := Cluster{Workers: []string{"127.0.0.1:1", "localhost:65535", "[::1]:80"}, Task: 2}
	if err := ok.Validate(); err != nil || ok.Size() != 3 || ok.IsChief() || ok.Device(1) != "/job:worker/replica:0/task:1" {
		t.Errorf("%+v: %v", ok, err)
	}
	for _, c := range []struct {
		cl   Cluster
		want string
	}{
		{Cluster{}, "at least one"},
		{Cluster{Workers: []string{"a:1", "b:2"}, Task: 2}, "task 2 is not in a cluster of 2"},
		{Cluster{Workers: []string{"a:1"}, Task: -1}, "task -1"},
		{Cluster{Workers: []string{"a"}}, `"a" is not host:port`},
		{Cluster{Workers: []string{"a:0"}}, "port in 1 … 65535"},
		{Cluster{Workers: []string{"a:70000"}}, "port in 1 … 65535"},
		{Cluster{Workers: []string{":80"}}, "port in 1 … 65535"},
		{Cluster{Workers: []string{"a:1", "b:2", "a:1"}}, "tasks 0 and 2 have the same address"},
	} {
		if err := c.cl.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want %q", c.cl, err, c.want)
		}
	}
}

func TestParseTFConfig(t *testing.T) {
	got, err := ParseTFConfig(`{"cluster": {"worker": ["w0:2222", "w1:2222"]}, "task": {"type": "worker", "index": 1}}`)
	if err != nil || !reflect.DeepEqual(got, TFConfig{Workers: []string{"w0:2222", "w1:2222"}, Task: 1, HasTask: true}) {
		t.Errorf("%+v, %v", got, err)
	}
	got, err = ParseTFConfig(`{"cluster": {"worker": ["w0:2222"]}}`)
	if err != nil || got.HasTask || len(got.Workers) != 1 {
		t.Errorf("no task: %+v, %v", got, err)
	}
	for in, want := range map[string]string{
		`{"cluster": {"chief": ["c:1"], "worker": ["w:1"]}}`:                          `job "chief"`,
		`{"cluster": {"worker": ["w:1"], "ps": ["p:1"]}}`:                             `job "ps"`,
		`{"cluster": {"worker": ["w:1"], "evaluator": ["e:1"]}}`:                      `job "evaluator"`,
		`{"cluster": {"worker": ["w:1"]}, "task": {"type": "chief", "index": 0}}`:     `task type "chief"`,
		`{"cluster": {"worker": ["w:1"]}, "task": {"type": "worker"}}`:                "no index",
		`{"cluster": {"worker": "w:1"}}`:                                              "not the JSON of a cluster",
		`not json`:                                                                    "not the JSON of a cluster",
		`{"cluster": {"worker": ["w:1"]}, "task": {"type": "evaluator", "index": 0}}`: `task type "evaluator"`,
	} {
		if _, err := ParseTFConfig(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", in, err, want)
		}
	}
}

// The server's definition names the collective group leader (without it
// TensorFlow's collectives wait forever) and every task.
func TestServerDef(t *testing.T) {
	def := serverDef(Cluster{Workers: []string{"h0:1", "h1:2"}, Task: 1}, runs.SessionConfig{IntraOpThreads: 2})
	job := def.GetCluster().GetJob()
	if len(job) != 1 || job[0].Name != "worker" || job[0].Tasks[0] != "h0:1" || job[0].Tasks[1] != "h1:2" ||
		def.JobName != "worker" || def.TaskIndex != 1 || def.Protocol != "grpc" ||
		def.DefaultSessionConfig.GetExperimental().GetCollectiveGroupLeader() != "/job:worker/replica:0/task:0" ||
		def.DefaultSessionConfig.IntraOpParallelismThreads != 2 {
		t.Errorf("ServerDef %v", def)
	}
}

func TestPacks(t *testing.T) {
	for _, c := range []struct {
		sizes []int64
		limit int64
		want  [][]int
	}{
		{[]int64{3, 4, 2}, 10, [][]int{{0, 1, 2}}},
		{[]int64{3, 4, 2}, 7, [][]int{{0, 1}, {2}}},
		{[]int64{20, 1, 1, 30}, 10, [][]int{{0}, {1, 2}, {3}}},
		{nil, 10, nil},
	} {
		if got := packs(c.sizes, c.limit); !reflect.DeepEqual(got, c.want) {
			t.Errorf("packs(%v, %d) = %v, want %v", c.sizes, c.limit, got, c.want)
		}
	}
}

// Fused in packs, reduced over a group of one and cut up again, tensors of
// every rank come back as they went in.
func TestMeanFusedKeepsShapesAndValues(t *testing.T) {
	s := op.NewScope()
	in := []any{float32(7), []float32{1, 2, 3}, [][]float32{{4, 5}, {6, 7}}, [][][]float32{{{8}, {9}}}}
	shapes := [][]int64{nil, {3}, {2, 2}, {1, 2, 1}}
	xs := make([]tf.Output, len(in))
	for i, v := range in {
		xs[i] = op.Const(s.SubScope("x"), v)
	}
	out := newCollectives(1, time.Minute).meanFused(s, xs, shapes, 10, 4) // packs {0, 1}, {2}, {3}
	sess := scopeSession(t, s)
	got, err := sess.Run(nil, out, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range in {
		if !reflect.DeepEqual(got[i].Value(), in[i]) {
			t.Errorf("tensor %d: %v, want %v", i, got[i].Value(), in[i])
		}
	}
}

// newReplicaTestTrainer is newTestTrainer's graph built as a replica of a
// group of one, in a local session: the replica path of Fit (fused
// gradients, step figures, broadcast, epoch sums) in one process.
func newReplicaTestTrainer(t *testing.T, network string, opt runs.OptimizerConfig, seed int64) *Trainer {
	t.Helper()
	spec, err := models.Get(network)
	if err != nil {
		t.Fatal(err)
	}
	mean, std := augment.NormalizeImageNet.MeanStd() // as newTestTrainer
	tg, err := BuildTrainGraph(ModelConfig{Network: spec, Net: spec.Config(3), Mean: mean, Std: std, Seed: seed, Optimizer: opt,
		Sync: &SyncConfig{Tasks: 1, Chief: true, Timeout: time.Minute}})
	if err != nil {
		t.Fatal(err)
	}
	sess, err := NewSession(tg.Graph, runs.SessionConfig{})
	if err != nil {
		t.Fatal(err)
	}
	tr := &Trainer{TG: tg, Sess: sess, size: int64(spec.InputSize)}
	t.Cleanup(func() { tr.Close() })
	if err := tr.Initialize(); err != nil {
		t.Fatal(err)
	}
	return tr
}

// The replica path with one task is the one-process path: the same weights
// bit for bit, the same figures, and the one-process graph has no
// collective.
func TestReplicaOfOneMatchesOneProcess(t *testing.T) {
	opt := runs.OptimizerConfig{Name: runs.OptimizerAdamW, WeightDecay: 1e-2, ClipNorm: 1}
	plain, spec := newTestTrainer(t, "googlenet", opt, 3) // batch norm: moving statistics are averaged too
	rep := newReplicaTestTrainer(t, "googlenet", opt, 3)
	for _, o := range plain.TG.Graph.Operations() {
		if strings.HasPrefix(o.Type(), "Collective") || strings.HasPrefix(o.Name(), "sync") {
			t.Fatalf("one-process graph has %s (%s)", o.Name(), o.Type())
		}
	}
	st := &runs.LoopState{Epoch: 0, Step: 0}
	if got, err := rep.SyncStart(st); err != nil || got != st {
		t.Fatalf("SyncStart: %v, %v", got, err)
	}
	train, val := newMemBatches(2, 2, spec.InputSize, 1), newMemBatches(2, 3, spec.InputSize, 2)
	cfg := LoopConfig{Epochs: 2, Select: runs.SelectValLoss, Schedule: runs.Schedule{Kind: "constant", Base: 1e-3}}
	var results [2][]runs.EpochResult
	for i, tr := range []*Trainer{plain, rep} {
		hooks := Hooks{OnEpoch: func(r runs.EpochResult, _ runs.LoopState) error {
			r.Seconds, r.ImagesPerSec = 0, 0
			results[i] = append(results[i], r)
			return nil
		}}
		if _, err := tr.Fit(context.Background(), train, val, 3, cfg, hooks); err != nil {
			t.Fatal(err)
		}
	}
	if !reflect.DeepEqual(results[0], results[1]) {
		t.Errorf("epochs differ:\none process %+v\nreplica     %+v", results[0], results[1])
	}
	a, err := plain.VariableValues()
	if err != nil {
		t.Fatal(err)
	}
	b, err := rep.VariableValues()
	if err != nil {
		t.Fatal(err)
	}
	if len(a) != len(b) || !reflect.DeepEqual(a, b) {
		t.Error("weights differ between the one-process and the replica path")
	}
}

// On a replica, a cancelled context stops the run after the step in
// progress, which tells every task to stop: OnInterrupt sees that step.
func TestReplicaStopsAfterTheStepInProgress(t *testing.T) {
	tr := newReplicaTestTrainer(t, "vgg8", runs.OptimizerConfig{Name: runs.OptimizerSGD}, 1)
	train, val := newMemBatches(5, 2, 150, 1), newMemBatches(1, 2, 150, 2)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var interrupted *runs.LoopState
	hooks := Hooks{
		OnStep: func(s StepInfo) {
			if s.Batch == 2 {
				cancel()
			}
		},
		OnInterrupt: func(st runs.LoopState) error { interrupted = &st; return nil },
	}
	cfg := LoopConfig{Epochs: 1, Select: runs.SelectValAcc, Schedule: runs.Schedule{Kind: "constant", Base: 1e-3}}
	st, err := tr.Fit(ctx, train, val, 3, cfg, hooks)
	if !errors.Is(err, context.Canceled) || interrupted == nil || interrupted.BatchesDone != 3 || st.Step != 3 || st.Seen != 6 {
		t.Errorf("error %v, state %+v, interrupted at %+v: want a stop after batch 3 (the step that carried the request)", err, st, interrupted)
	}
}

// A collective whose peer never comes fails, after the timeout, with a
// *PeerError that names the other task of a cluster of two; the status
// code is read from the bindings' error.
func TestPeerErrorOnTimeout(t *testing.T) {
	s := op.NewScope()
	x := op.Const(s.SubScope("x"), []float32{1, 2})
	y := newCollectives(2, 300*time.Millisecond).reduce(s, x, 77, "Div")
	sess := scopeSession(t, s)
	start := time.Now()
	_, runErr := sess.Run(nil, []tf.Output{y}, nil)
	if code, ok := tfops.ErrorCode(runErr); !ok || code != tfops.CodeDeadlineExceeded {
		t.Fatalf("after %v: %v (code %v, %v), want DEADLINE_EXCEEDED", time.Since(start), runErr, code, ok)
	}
	r := &Replica{Cluster: Cluster{Workers: []string{"10.0.0.1:2222", "10.0.0.2:2222"}, Task: 0}, Timeout: 300 * time.Millisecond}
	err := r.peerError(runErr)
	var pe *PeerError
	if !errors.As(err, &pe) || !errors.Is(err, ErrPeer) || !pe.TimedOut || pe.Task != 1 || pe.Addr != "10.0.0.2:2222" {
		t.Fatalf("%v (%+v), want task 1 timed out", err, pe)
	}
	if !strings.Contains(err.Error(), "task 1 (10.0.0.2:2222) did not answer within 300ms") || strings.Contains(pe.Summary(), "\n") {
		t.Errorf("message %q, summary %q", err, pe.Summary())
	}
	if other := errors.New("not TensorFlow's"); r.peerError(other) != other {
		t.Error("a non-TensorFlow error was reworded")
	}
}

// scopeSession finalizes s and opens a session on its graph, closed when
// the test ends.
func scopeSession(t *testing.T, s *op.Scope) *tf.Session {
	t.Helper()
	g, err := s.Finalize()
	if err != nil {
		t.Fatal(err)
	}
	sess, err := NewSession(g, runs.SessionConfig{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sess.Close() })
	return sess
}
