package graphs_test

import (
	"errors"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	tf "github.com/galeone/tensorflow/tensorflow/go"
	"github.com/galeone/tensorflow/tensorflow/go/op"

	"github.com/kfash-tf/kfash-tf/graphs"
	"github.com/kfash-tf/kfash-tf/graphs/runs"
	"github.com/kfash-tf/kfash-tf/tfops"
)

// ckptVar describes a variable of a checkpoint fixture.
type ckptVar struct {
	name  string
	shape []int64
	role  tfops.Role
}

// ckptFixture is a graph of variables with a Saver, in an open session.
type ckptFixture struct {
	t      *testing.T
	graph  *tf.Graph
	store  *tfops.Store
	saver  *graphs.Saver
	sess   *tf.Session
	reads  map[string]tf.Output
	setter map[string]optSetter
}

func newCkptFixture(t *testing.T, specs []ckptVar) *ckptFixture {
	t.Helper()
	g := tf.NewGraph()
	root := op.NewScopeWithGraph(g)
	f := &ckptFixture{t: t, graph: g, store: tfops.NewStore(root.SubScope("vars"), 1), reads: map[string]tf.Output{}, setter: map[string]optSetter{}}
	for _, sp := range specs {
		f.store.Get(sp.name, sp.shape, sp.role, tfops.Constant(0))
	}
	probe := root.SubScope("probe")
	for _, v := range f.store.Variables() {
		f.reads[v.Name] = op.ReadVariableOp(probe.SubScope("read"), v.Handle, tf.Float)
		value := op.Placeholder(probe.SubScope("value"), tf.Float)
		f.setter[v.Name] = optSetter{value, op.AssignVariableOp(probe.SubScope("set"), v.Handle, value)}
	}
	var err error
	if f.saver, err = graphs.NewSaver(root.SubScope("save"), f.store.Variables()); err != nil {
		t.Fatal(err)
	}
	if err := root.Err(); err != nil {
		t.Fatal(err)
	}
	if f.sess, err = graphs.NewSession(g, runs.SessionConfig{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.sess.Close() })
	if _, err := f.sess.Run(nil, nil, f.store.InitOps()); err != nil {
		t.Fatal(err)
	}
	return f
}

// fill sets every variable to base + its element index.
func (f *ckptFixture) fill(base float64) {
	f.t.Helper()
	for _, v := range f.store.Variables() {
		vals := make([]float32, v.Size())
		for i := range vals {
			vals[i] = float32(base + float64(i))
		}
		t, err := tfops.Float32Tensor(vals, v.Shape)
		if err != nil {
			f.t.Fatal(err)
		}
		s := f.setter[v.Name]
		if _, err := f.sess.Run(map[tf.Output]*tf.Tensor{s.value: t}, nil, []*tf.Operation{s.op}); err != nil {
			f.t.Fatal(err)
		}
	}
}

// check fails the test unless every variable holds base + its index.
func (f *ckptFixture) check(base float64) {
	f.t.Helper()
	for _, v := range f.store.Variables() {
		out, err := f.sess.Run(nil, []tf.Output{f.reads[v.Name]}, nil)
		if err != nil {
			f.t.Fatal(err)
		}
		var got []float32
		if len(v.Shape) == 0 {
			got = []float32{out[0].Value().(float32)}
		} else if got, err = tfops.Float32s(out[0]); err != nil {
			f.t.Fatal(err)
		}
		for i, x := range got {
			if want := float32(base + float64(i)); x != want {
				f.t.Fatalf("%s[%d] = %v, want %v", v.Name, i, x, want)
			}
		}
	}
}

var ckptSpecs = []ckptVar{
	{"conv/kernel", []int64{2, 2, 1, 3}, tfops.RoleKernel},
	{"conv/bias", []int64{3}, tfops.RoleBias},
	{graphs.SlotName("conv/kernel", "m"), []int64{2, 2, 1, 3}, tfops.RoleState},
	{graphs.OptimizerStepVariable, []int64{}, tfops.RoleState},
}

// Values saved, overwritten and restored come back exactly, optimizer slots
// and the scalar step counter included; the files are TensorFlow's V2 format.
func TestSaverRoundTrip(t *testing.T) {
	f := newCkptFixture(t, ckptSpecs)
	prefix := filepath.Join(t.TempDir(), "sub", "variables")
	f.fill(10)
	if err := f.saver.Save(f.sess, prefix); err != nil {
		t.Fatal(err)
	}
	for _, suffix := range []string{".index", ".data-00000-of-00001"} {
		if _, err := os.Stat(prefix + suffix); err != nil {
			t.Error(err)
		}
	}
	f.fill(-5)
	f.check(-5)
	if err := f.saver.Restore(f.sess, prefix); err != nil {
		t.Fatal(err)
	}
	f.check(10)

	// The names a SavedModel's saver_def needs refer to the graph's ops.
	for _, c := range []struct{ name, want string }{
		{f.saver.FilenameTensorName(), "save/filename/Placeholder:0"},
		{f.saver.SaveTensorName(), "save/control_dependency/Identity:0"},
		{f.saver.RestoreOpName(), "save/restore_all/NoOp"},
	} {
		if c.name != c.want {
			t.Errorf("name %q, want %q", c.name, c.want)
		}
		if opName, _, _ := strings.Cut(c.name, ":"); f.graph.Operation(opName) == nil {
			t.Errorf("no op %q in the graph", opName)
		}
	}
	// Fetching the save tensor saves (how a SavedModel's saver_def saves).
	other := filepath.Join(t.TempDir(), "via_tensor")
	name, _ := tf.NewTensor(other)
	if _, err := f.sess.Run(map[tf.Output]*tf.Tensor{f.saver.Filename: name}, []tf.Output{f.saver.SaveTensor}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(other + ".index"); err != nil {
		t.Error(err)
	}
}

// Restoring a checkpoint that lacks a variable, or holds it with another
// shape, is TensorFlow's error naming the variable, and assigns nothing.
func TestSaverRestoreErrors(t *testing.T) {
	saved := []ckptVar{
		{"dense/kernel", []int64{2, 3}, tfops.RoleKernel},
		{"dense/bias", []int64{3}, tfops.RoleBias},
		{"optimizer/step", []int64{}, tfops.RoleState},
		{"counter", []int64{2}, tfops.RoleState},
	}
	src := newCkptFixture(t, saved)
	src.fill(1)
	prefix := filepath.Join(t.TempDir(), "variables")
	if err := src.saver.Save(src.sess, prefix); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name  string
		specs []ckptVar
		want  []string
	}{
		{"missing_variable", []ckptVar{saved[0], saved[1], {"extra/kernel", []int64{4}, tfops.RoleKernel}}, []string{"extra/kernel", "not found"}},
		{"other_shape", []ckptVar{{"dense/kernel", []int64{3, 2}, tfops.RoleKernel}, saved[1]}, []string{"dense/kernel", "does not match"}},
		{"other_rank", []ckptVar{saved[0], {"dense/bias", []int64{1, 3}, tfops.RoleBias}}, []string{"dense/bias"}},
		{"vector_as_scalar", []ckptVar{saved[0], {"counter", []int64{}, tfops.RoleState}}, []string{"variable counter is a scalar"}},
		{"scalar_as_vector", []ckptVar{saved[0], {"optimizer/step", []int64{1}, tfops.RoleState}}, []string{"optimizer/step"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dst := newCkptFixture(t, c.specs)
			dst.fill(100)
			err := dst.saver.Restore(dst.sess, prefix)
			if err == nil {
				t.Fatal("no error")
			}
			t.Log(firstLine(err))
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not mention %q: %v", w, firstLine(err))
				}
			}
			dst.check(100)
		})
	}
	t.Run("no_checkpoint", func(t *testing.T) {
		err := src.saver.Restore(src.sess, filepath.Join(t.TempDir(), "nothing"))
		if err == nil || !strings.Contains(err.Error(), "no checkpoint at") {
			t.Fatalf("error %v", err)
		}
	})
}

func firstLine(err error) string {
	s, _, _ := strings.Cut(err.Error(), "\n")
	return s
}

// checkpointFolders lists the epoch folders of dir.
func checkpointFolders(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if e.IsDir() {
			out = append(out, e.Name())
		}
	}
	sort.Strings(out)
	return out
}

// "last" and "best" point at the right epochs through a run, and folders no
// name points at are removed; restoring either gives its epoch's values.
func TestCheckpointDirLastAndBest(t *testing.T) {
	f := newCkptFixture(t, ckptSpecs)
	d := runs.CheckpointDir{Dir: filepath.Join(t.TempDir(), "checkpoints")}
	steps := []struct {
		epoch       int
		names       []string
		last, best  int // epochs expected to resolve after the write
		wantFolders []string
	}{
		{1, []string{"last", "best"}, 1, 1, []string{"epoch-0001"}},
		{2, []string{"last"}, 2, 1, []string{"epoch-0001", "epoch-0002"}},
		{3, []string{"last"}, 3, 1, []string{"epoch-0001", "epoch-0003"}},
		{4, []string{"last", "best"}, 4, 4, []string{"epoch-0004"}},
		// The same epoch written again (a resumed run) never overwrites the
		// folder "best" still points at.
		{4, []string{"last"}, 4, 4, []string{"epoch-0004", "epoch-0004.1"}},
		{5, []string{"best"}, 4, 5, []string{"epoch-0004.1", "epoch-0005"}},
	}
	for i, s := range steps {
		f.fill(float64(100*i + s.epoch))
		st := runs.CheckpointState{Epoch: s.epoch, Step: int64(10 * s.epoch), Seed: 7,
			Metrics: map[string]float64{"val_acc": 0.1 * float64(s.epoch)}, Time: time.Unix(1700000000+int64(i), 0).UTC()}
		if err := d.WriteWith(f.saver.SaveFunc(f.sess), s.names, st); err != nil {
			t.Fatal(err)
		}
		if got := checkpointFolders(t, d.Dir); strings.Join(got, ",") != strings.Join(s.wantFolders, ",") {
			t.Errorf("after write %d: folders %v, want %v", i, got, s.wantFolders)
		}
		for name, epoch := range map[string]int{"last": s.last, "best": s.best} {
			_, st, err := d.Resolve(name)
			if err != nil {
				t.Fatalf("after write %d: %v", i, err)
			}
			if st.Epoch != epoch || st.Step != int64(10*epoch) || st.Seed != 7 || st.Metrics["val_acc"] != 0.1*float64(epoch) {
				t.Errorf("after write %d: %s is %+v, want epoch %d", i, name, st, epoch)
			}
		}
	}
	// best → epoch 5 (write 5), last → the second epoch-4 write (write 4).
	for name, write := range map[string]int{"best": 5, "last": 4} {
		prefix, _, err := d.Resolve(name)
		if err != nil {
			t.Fatal(err)
		}
		f.fill(-1)
		if err := f.saver.Restore(f.sess, prefix); err != nil {
			t.Fatal(err)
		}
		f.check(float64(100*write + steps[write].epoch))
	}
}

// A folder half-written when the process died has no pointer: Resolve
// ignores it and the next Write removes it, along with stray temp pointers.
func TestCheckpointDirCrashLeftovers(t *testing.T) {
	f := newCkptFixture(t, ckptSpecs)
	d := runs.CheckpointDir{Dir: t.TempDir()}
	f.fill(3)
	if err := d.WriteWith(f.saver.SaveFunc(f.sess), []string{"last", "best"}, runs.CheckpointState{Epoch: 8}); err != nil {
		t.Fatal(err)
	}
	// The crash: a folder for epoch 9 with garbage and a pointer never
	// switched, plus a temp pointer file; an unrelated file must survive.
	stale := filepath.Join(d.Dir, "epoch-0009")
	if err := os.MkdirAll(stale, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string]string{
		filepath.Join(stale, "variables.index"):               "garbage",
		filepath.Join(stale, "variables.data-00000-of-00001"): "garbage",
		filepath.Join(d.Dir, ".last.json.tmp-123"):            `{"folder": "epoch-0009"}`,
		filepath.Join(d.Dir, "notes.txt"):                     "keep me",
	} {
		if err := os.WriteFile(name, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	prefix, st, err := d.Resolve("last")
	if err != nil || st.Epoch != 8 {
		t.Fatalf("Resolve(last) = %v, %+v, %v", prefix, st, err)
	}
	f.fill(0)
	if err := f.saver.Restore(f.sess, prefix); err != nil {
		t.Fatal(err)
	}
	f.check(3)

	if err := d.WriteWith(f.saver.SaveFunc(f.sess), []string{"last"}, runs.CheckpointState{Epoch: 10}); err != nil {
		t.Fatal(err)
	}
	if got := checkpointFolders(t, d.Dir); strings.Join(got, ",") != "epoch-0008,epoch-0010" {
		t.Errorf("folders %v", got)
	}
	if _, err := os.Stat(filepath.Join(d.Dir, ".last.json.tmp-123")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("temp pointer not removed: %v", err)
	}
	if _, err := os.Stat(filepath.Join(d.Dir, "notes.txt")); err != nil {
		t.Errorf("unrelated file removed: %v", err)
	}

	// Rewriting the stale epoch itself replaces the garbage.
	f.fill(9)
	if err := os.MkdirAll(stale, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := d.WriteWith(f.saver.SaveFunc(f.sess), []string{"last"}, runs.CheckpointState{Epoch: 9}); err != nil {
		t.Fatal(err)
	}
	prefix, _, err = d.Resolve("last")
	if err != nil {
		t.Fatal(err)
	}
	f.fill(0)
	if err := f.saver.Restore(f.sess, prefix); err != nil {
		t.Fatal(err)
	}
	f.check(9)
}

// An absent checkpoint is ErrNoCheckpoint with a message naming it and the
// folder; a malformed name or pointer is a plain error.
func TestCheckpointDirResolveErrors(t *testing.T) {
	dir := t.TempDir()
	d := runs.CheckpointDir{Dir: dir}
	_, _, err := d.Resolve("best")
	if !errors.Is(err, runs.ErrNoCheckpoint) || err.Error() != "no checkpoint 'best' in "+dir {
		t.Errorf("Resolve(best) in an empty folder: %v", err)
	}
	_, _, err = runs.CheckpointDir{Dir: filepath.Join(dir, "missing")}.Resolve("last")
	if !errors.Is(err, runs.ErrNoCheckpoint) {
		t.Errorf("Resolve in a missing folder: %v", err)
	}
	if _, _, err := d.Resolve("../x"); err == nil || errors.Is(err, runs.ErrNoCheckpoint) {
		t.Errorf("Resolve(../x): %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "last.json"), []byte(`{"folder": "../../etc"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := d.Resolve("last"); err == nil || !strings.Contains(err.Error(), "invalid folder") {
		t.Errorf("Resolve of a pointer leading out: %v", err)
	}
	f := newCkptFixture(t, ckptSpecs[:1])
	for _, names := range [][]string{nil, {"last", "last"}, {"a/b"}} {
		if err := d.WriteWith(f.saver.SaveFunc(f.sess), names, runs.CheckpointState{}); err == nil {
			t.Errorf("Write with names %q: no error", names)
		}
	}
}

// A diverged run's NaN and infinite metrics and loop figures survive
// state.json, and so does the rest of the loop state.
func TestCheckpointStateNonFinite(t *testing.T) {
	f := newCkptFixture(t, ckptSpecs[:1])
	d := runs.CheckpointDir{Dir: t.TempDir()}
	loop := runs.LoopState{Epoch: 2, Step: 1 << 40, BestEpoch: 1, Best: math.Inf(1), SinceBest: 1, BatchesDone: 7, LossSum: math.NaN(), Correct: 5, Seen: 70}
	want := runs.CheckpointState{Epoch: 2, Step: 1 << 40, Seed: -3, Time: time.Date(2025, 3, 1, 12, 0, 0, 5, time.UTC), Loop: &loop,
		Metrics: map[string]float64{"train_loss": math.NaN(), "val_loss": math.Inf(1), "low": math.Inf(-1), "val_acc": 0.625}}
	if err := d.WriteWith(f.saver.SaveFunc(f.sess), []string{"last"}, want); err != nil {
		t.Fatal(err)
	}
	_, got, err := d.Resolve("last")
	if err != nil {
		t.Fatal(err)
	}
	if got.Epoch != want.Epoch || got.Step != want.Step || got.Seed != want.Seed || !got.Time.Equal(want.Time) {
		t.Errorf("state %+v, want %+v", got, want)
	}
	if !math.IsNaN(got.Metrics["train_loss"]) || !math.IsInf(got.Metrics["val_loss"], 1) ||
		!math.IsInf(got.Metrics["low"], -1) || got.Metrics["val_acc"] != 0.625 {
		t.Errorf("metrics %v", got.Metrics)
	}
	if got.Loop == nil {
		t.Fatal("loop state lost")
	}
	gl := *got.Loop
	if !math.IsNaN(gl.LossSum) || !math.IsInf(gl.Best, 1) {
		t.Errorf("loop floats %v, %v", gl.LossSum, gl.Best)
	}
	gl.LossSum, gl.Best, loop.LossSum, loop.Best = 0, 0, 0, 0
	if gl != loop {
		t.Errorf("loop %+v, want %+v", gl, loop)
	}

	// Without a loop state, none comes back.
	want.Loop = nil
	if err := d.WriteWith(f.saver.SaveFunc(f.sess), []string{"best"}, want); err != nil {
		t.Fatal(err)
	}
	if _, got, err = d.Resolve("best"); err != nil || got.Loop != nil {
		t.Errorf("Resolve(best) = %+v, %v", got, err)
	}
}

// Training resumed from a checkpoint continues bit for bit: the store's
// variables hold the whole optimizer state (moments, step counter).
func TestOptimizerResumeIsExact(t *testing.T) {
	for _, name := range runs.OptimizerNames() {
		t.Run(name, func(t *testing.T) {
			cfg := runs.OptimizerConfig{Name: name, Momentum: 0.9, WeightDecay: 0.01, ClipNorm: 1}
			spec := []optVar{{"w", tfops.RoleKernel, []float64{0.5, -1.0, 2.0}}}
			dir := runs.CheckpointDir{Dir: t.TempDir()}

			straight := newOptFixture(t, cfg, spec)
			saver := optSaver(t, straight)
			for k, s := range optTrajectory {
				straight.step(s.lr, s.g)
				if k == 0 {
					if err := dir.WriteWith(saver.SaveFunc(straight.sess), []string{"last"}, runs.CheckpointState{Epoch: 1, Step: 1}); err != nil {
						t.Fatal(err)
					}
				}
			}

			resumed := newOptFixture(t, cfg, spec)
			resumed.set("w", []float64{9, 9, 9}) // anything: the restore overwrites it
			prefix, st, err := dir.Resolve("last")
			if err != nil {
				t.Fatal(err)
			}
			if err := optSaver(t, resumed).Restore(resumed.sess, prefix); err != nil {
				t.Fatal(err)
			}
			for _, s := range optTrajectory[st.Step:] {
				resumed.step(s.lr, s.g)
			}
			for _, v := range straight.store.Variables() {
				assertClose(t, v.Name, resumed.value(v.Name), straight.value(v.Name), 0)
			}
		})
	}
}

// optSaver adds a Saver of all the fixture's variables to its graph; the
// session sees ops added after it was opened.
func optSaver(t *testing.T, f *optFixture) *graphs.Saver {
	t.Helper()
	sv, err := graphs.NewSaver(f.store.Scope().SubScope("save"), f.store.Variables())
	if err != nil {
		t.Fatal(err)
	}
	return sv
}

// ckptCrashEnv makes the test binary a checkpoint writer for
// TestCheckpointDirSurvivesKill.
const ckptCrashEnv = "KFASH_TF_CKPT_CRASH_DIR"

// A process killed (SIGKILL) at any moment of a Write leaves "last"
// pointing at a complete checkpoint of an earlier epoch, and the next Write
// cleans up after it.
func TestCheckpointDirSurvivesKill(t *testing.T) {
	if dir := os.Getenv(ckptCrashEnv); dir != "" {
		// The child: write epoch after epoch until killed.
		f := newCkptFixture(t, ckptSpecs)
		d := runs.CheckpointDir{Dir: dir}
		for epoch := 1; ; epoch++ {
			f.fill(float64(epoch))
			names := []string{"last"}
			if epoch%3 == 0 {
				names = append(names, "best")
			}
			if err := d.WriteWith(f.saver.SaveFunc(f.sess), names, runs.CheckpointState{Epoch: epoch}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if testing.Short() {
		t.Skip("starts and kills child processes")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	f := newCkptFixture(t, ckptSpecs)
	for round, delay := range []time.Duration{0, 3 * time.Millisecond, 11 * time.Millisecond, 29 * time.Millisecond, 71 * time.Millisecond} {
		dir := filepath.Join(t.TempDir(), "checkpoints")
		cmd := exec.Command(exe, "-test.run=^TestCheckpointDirSurvivesKill$")
		cmd.Env = append(os.Environ(), ckptCrashEnv+"="+dir)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Wait for the first checkpoint, then kill at some point of a later
		// Write.
		deadline := time.Now().Add(60 * time.Second)
		for {
			if _, err := os.Stat(filepath.Join(dir, "last.json")); err == nil {
				break
			}
			if time.Now().After(deadline) {
				cmd.Process.Kill()
				cmd.Wait()
				t.Fatal("the child wrote no checkpoint")
			}
			time.Sleep(time.Millisecond)
		}
		time.Sleep(delay)
		if err := cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		cmd.Wait()

		d := runs.CheckpointDir{Dir: dir}
		prefix, st, err := d.Resolve("last")
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		if err := f.saver.Restore(f.sess, prefix); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		f.check(float64(st.Epoch))
		t.Logf("round %d: killed after %v, last = epoch %d, folders %v", round, delay, st.Epoch, checkpointFolders(t, dir))

		// The next Write leaves only what last and best point at.
		if err := d.WriteWith(f.saver.SaveFunc(f.sess), []string{"last"}, runs.CheckpointState{Epoch: st.Epoch + 1}); err != nil {
			t.Fatal(err)
		}
		want := map[string]bool{}
		for _, name := range []string{"last", "best"} {
			if p, _, err := d.Resolve(name); err == nil {
				want[filepath.Base(filepath.Dir(p))] = true
			}
		}
		for _, folder := range checkpointFolders(t, dir) {
			if !want[folder] {
				t.Errorf("round %d: unreferenced folder %s left", round, folder)
			}
		}
	}
}
