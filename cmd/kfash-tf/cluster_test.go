package main

import (
	"encoding/gob"
	"encoding/json"
	"fmt"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kfash-tf/kfash-tf/augment/augmenttest"
	"github.com/kfash-tf/kfash-tf/graphs/runs"
)

// Synchronous data-parallel training: `train --cluster … --task N` run as
// several local processes on loopback ports. Each task runs in a session of
// its own (setsid), as a launcher would start it, and is SIGKILLed at the
// end of its test if still running. The processes' TensorFlow servers
// cannot be stopped (see tfops.Server): a cluster lives in subprocesses.

// dumpVarsEnv is the test hook (app/vardump.go) with which every task
// writes its final variables.
const dumpVarsEnv = "KFASH_TF_DUMP_VARIABLES"

// clusterData writes 80 training images of 2 classes (160: 5 steps of a
// global batch of 32, none dropped) and 2 validation images per class.
func clusterData(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "data")
	if err := augmenttest.Write(dir, augmenttest.Spec{Classes: []string{"circle", "square"},
		PerClass: map[string]int{"Train": 80, "Validation": 2}, Size: 40, Seed: 11}); err != nil {
		t.Fatal(err)
	}
	return dir
}

// freeAddrs returns n loopback addresses whose ports were free a moment
// ago.
func freeAddrs(t *testing.T, n int) string {
	t.Helper()
	var addrs []string
	var ls []net.Listener
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		addrs = append(addrs, l.Addr().String())
	}
	for _, l := range ls {
		l.Close()
	}
	return strings.Join(addrs, ",")
}

// lockedBuffer is an output buffer read while the process writes it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// clusterTask is one running `train` task.
type clusterTask struct {
	cmd  *exec.Cmd
	out  lockedBuffer // stdout and stderr
	done chan struct{}
	code int // exit status once done; -1 when killed by a signal
}

// startCluster starts one `train` per task of a cluster of n on free
// loopback ports: args(i) are task i's arguments after "train", env extra
// environment for all.
func startCluster(t *testing.T, n int, args func(task int) []string, env ...string) []*clusterTask {
	t.Helper()
	bin := binary(t)
	addrs := freeAddrs(t, n)
	tasks := make([]*clusterTask, n)
	for i := range tasks {
		ct := &clusterTask{done: make(chan struct{})}
		a := append([]string{"train", "--cluster", addrs, "--task", fmt.Sprint(i)}, args(i)...)
		ct.cmd = exec.Command(bin, a...)
		ct.cmd.Stdout, ct.cmd.Stderr = &ct.out, &ct.out
		ct.cmd.Env = append(os.Environ(), env...)
		ct.cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		if err := ct.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() {
			err := ct.cmd.Wait()
			ct.code = ct.cmd.ProcessState.ExitCode()
			if err != nil && ct.code == 0 {
				ct.code = -1
			}
			close(ct.done)
		}()
		tasks[i] = ct
	}
	t.Cleanup(func() {
		for _, ct := range tasks {
			select {
			case <-ct.done:
			default:
				ct.cmd.Process.Kill()
				<-ct.done
			}
		}
	})
	return tasks
}

// waitTask waits up to d for ct to end and returns its exit status.
func waitTask(t *testing.T, ct *clusterTask, d time.Duration) int {
	t.Helper()
	select {
	case <-ct.done:
		return ct.code
	case <-time.After(d):
		t.Fatalf("task still running after %v:\n%s", d, ct.out.String())
	}
	return 0
}

// waitAll waits for every task to succeed.
func waitAll(t *testing.T, tasks []*clusterTask, d time.Duration) {
	t.Helper()
	for i, ct := range tasks {
		if code := waitTask(t, ct, d); code != 0 {
			t.Fatalf("task %d: exit %d\n%s", i, code, ct.out.String())
		}
	}
}

// waitOutput waits up to d for ct's output to contain s.
func waitOutput(t *testing.T, ct *clusterTask, s string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !strings.Contains(ct.out.String(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q after %v:\n%s", s, d, ct.out.String())
		}
		select {
		case <-ct.done:
			t.Fatalf("ended (exit %d) before %q:\n%s", ct.code, s, ct.out.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// readVariables reads a task's variables written by the dump hook.
func readVariables(t *testing.T, path string) map[string][]float32 {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var vars map[string][]float32
	if err := gob.NewDecoder(f).Decode(&vars); err != nil {
		t.Fatal(err)
	}
	return vars
}

// relDiff compares two sets of variables: the largest, over the
// variables, of the relative error of the tensor ‖a−b‖₂/‖a‖₂ (l2) and of
// the elementwise max|a−b| / max|a| (worst), with the variable of each.
func relDiff(t *testing.T, a, b map[string][]float32) (l2 float64, l2Var string, worst float64, worstVar string) {
	t.Helper()
	if len(a) != len(b) {
		t.Fatalf("%d variables against %d", len(a), len(b))
	}
	for name, va := range a {
		vb, ok := b[name]
		if !ok || len(vb) != len(va) {
			t.Fatalf("variable %s: %d values against %d", name, len(va), len(vb))
		}
		var scale, diff, sa, sd float64
		for i := range va {
			x, d := float64(va[i]), float64(va[i])-float64(vb[i])
			scale, diff = math.Max(scale, math.Abs(x)), math.Max(diff, math.Abs(d))
			sa, sd = sa+x*x, sd+d*d
		}
		if r := diff / math.Max(scale, 1e-30); r > worst || math.IsNaN(r) {
			worst, worstVar = r, name
		}
		if r := math.Sqrt(sd / math.Max(sa, 1e-60)); r > l2 || math.IsNaN(r) {
			l2, l2Var = r, name
		}
	}
	return l2, l2Var, worst, worstVar
}

// identical reports whether two sets of variables are equal bit for bit.
func identical(a, b map[string][]float32) bool {
	if len(a) != len(b) {
		return false
	}
	for name, va := range a {
		vb := b[name]
		if len(vb) != len(va) {
			return false
		}
		for i := range va {
			if math.Float32bits(va[i]) != math.Float32bits(vb[i]) {
				return false
			}
		}
	}
	return true
}

func readConfig(t *testing.T, run string) runs.Config {
	t.Helper()
	_, cfg, err := runs.Open(run)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// Two tasks at batch 16 train, step by step, on the global batches one
// process at batch 32 trains on, and end with its weights: every variable
// within 1e-4 relative error (‖a−b‖/‖a‖; measured 7e-6, elementwise 3e-5).
//
// The optimizer is plain SGD at a small rate: its update is linear in the
// gradient, so the float32 rounding of the mean of two half-batch means
// against one mean of 32 (some 1e-7) stays small. Adam's first steps are
// sign(gradient) × lr, which turns the rounding of a near-zero gradient
// into a full-size step: with it, one process at 1 and at 2 intra-op
// threads already ends 1e-3 apart. One intra-op thread everywhere keeps
// each op's summation order that of any machine. The study's
// initialisation (--init torch) gives every bias a value of its own scale
// (1/√fan_in): the default Glorot biases start at zero and after 20 small
// steps are still so near it that the rounding above is a tenth of some of
// them, which a per-variable relative error cannot tell from a bug.
func TestClusterMatchesOneProcess(t *testing.T) {
	binary(t)
	data := clusterData(t)
	base := t.TempDir()
	common := []string{"vgg8", "--data", data, "--epochs", "4", "--optimizer", "sgd", "--lr", "1e-3", "--momentum", "0",
		"--init", "torch", "--seed", "7", "--workers", "1", "--intra-op-threads", "1", "--collective-timeout", "2m"}
	one, two := filepath.Join(base, "one"), filepath.Join(base, "two")
	start := time.Now()
	cmd := exec.Command(binary(t), append([]string{"train", "--batch-size", "32", "--out", one}, common...)...)
	cmd.Env = append(os.Environ(), dumpVarsEnv+"="+filepath.Join(base, "dump-one"))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("one process: %v\n%s", err, out)
	}
	oneTime := time.Since(start)
	start = time.Now()
	tasks := startCluster(t, 2, func(int) []string { return append([]string{"--batch-size", "16", "--out", two}, common...) },
		dumpVarsEnv+"="+filepath.Join(base, "dump-two"))
	waitAll(t, tasks, 3*time.Minute)
	t.Logf("one process %v, two tasks %v", oneTime.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))

	ref := readVariables(t, filepath.Join(base, "dump-one", "task-0.gob"))
	chief := readVariables(t, filepath.Join(base, "dump-two", "task-0.gob"))
	if !identical(chief, readVariables(t, filepath.Join(base, "dump-two", "task-1.gob"))) {
		t.Error("the two tasks' weights differ")
	}
	l2, l2Var, worst, worstVar := relDiff(t, ref, chief)
	t.Logf("two tasks against one process after 20 steps: relative error %.3g (%s), elementwise at most %.3g (%s)", l2, l2Var, worst, worstVar)
	if l2 > 1e-4 || worst > 5e-4 {
		t.Errorf("two tasks at batch 16 end %.3g (relative, in %s; elementwise %.3g in %s) from one process at batch 32, want ≤ 1e-4",
			l2, l2Var, worst, worstVar)
	}

	cfg := readConfig(t, two)
	if cfg.Tasks != 2 || cfg.GlobalBatchSize != 32 || cfg.BatchSize != 16 || cfg.LRScale != "" || cfg.Schedule.Base != 1e-3 {
		t.Errorf("config: tasks %d, global batch %d, batch %d, lr scale %q, lr %g", cfg.Tasks, cfg.GlobalBatchSize, cfg.BatchSize, cfg.LRScale, cfg.Schedule.Base)
	}
	if raw, _ := os.ReadFile(filepath.Join(one, "config.json")); strings.Contains(string(raw), "tasks") {
		t.Error("a one-process config.json records tasks")
	}
	// The metrics are those of the global batches: the same rows, and
	// the run learned (a test of equal weights that never moved proves
	// nothing).
	a, err := runs.Run{Dir: one}.ReadMetrics()
	if err != nil {
		t.Fatal(err)
	}
	b, err := runs.Run{Dir: two}.ReadMetrics()
	if err != nil {
		t.Fatal(err)
	}
	if len(a) != 4 || len(b) != 4 || a[3].Step != 20 || b[3].Step != 20 {
		t.Fatalf("metrics: %d and %d rows", len(a), len(b))
	}
	for i := range a {
		if math.Abs(a[i].TrainLoss-b[i].TrainLoss) > 1e-4*a[i].TrainLoss || math.Abs(a[i].ValLoss-b[i].ValLoss) > 1e-4*a[i].ValLoss ||
			a[i].TrainAcc != b[i].TrainAcc || a[i].ValAcc != b[i].ValAcc {
			t.Errorf("epoch %d: one process %+v, two tasks %+v", i+1, a[i], b[i])
		}
	}
	if a[3].TrainLoss > 0.9*a[0].TrainLoss {
		t.Errorf("train loss %.4f → %.4f: the run did not learn", a[0].TrainLoss, a[3].TrainLoss)
	}
}

// Three tasks end with bit-identical weights; only the chief writes: the
// other tasks' --out stays empty. --lr-scale linear is recorded.
func TestClusterThreeTasksIdentical(t *testing.T) {
	binary(t)
	data := clusterData(t)
	base := t.TempDir()
	run, elsewhere := filepath.Join(base, "run"), filepath.Join(base, "not-written")
	tasks := startCluster(t, 3, func(i int) []string {
		out := run
		if i > 0 {
			out = elsewhere
		}
		return []string{"vgg8", "--data", data, "--epochs", "1", "--batch-size", "8", "--lr-scale", "linear", "--workers", "1",
			"--collective-timeout", "2m", "--out", out}
	}, dumpVarsEnv+"="+filepath.Join(base, "dump"))
	waitAll(t, tasks, 3*time.Minute)
	chief := readVariables(t, filepath.Join(base, "dump", "task-0.gob"))
	for i := 1; i < 3; i++ {
		if !identical(chief, readVariables(t, filepath.Join(base, "dump", fmt.Sprintf("task-%d.gob", i)))) {
			t.Errorf("task %d's weights differ from the chief's", i)
		}
	}
	if _, err := os.Stat(elsewhere); err == nil {
		t.Error("a non-chief task wrote its --out")
	}
	cfg := readConfig(t, run)
	if cfg.Tasks != 3 || cfg.GlobalBatchSize != 24 || cfg.LRScale != "linear" || math.Abs(cfg.Schedule.Base-9e-4) > 1e-12 {
		t.Errorf("config: tasks %d, global batch %d, lr scale %q, lr %g", cfg.Tasks, cfg.GlobalBatchSize, cfg.LRScale, cfg.Schedule.Base)
	}
	if got := runState(t, run); got != "finished@1" {
		t.Errorf("status %s", got)
	}
	// 160 images in global batches of 24: 6 steps, 16 images left out.
	if m, err := (runs.Run{Dir: run}).ReadMetrics(); err != nil || len(m) != 1 || m[0].Step != 6 {
		t.Errorf("metrics %+v, %v; want epoch 1 at step 6", m, err)
	}
}

// A task killed mid-epoch ends the others at once with a message that
// names it and says how to recover; restarting every task with --resume
// finishes the run from the chief's last checkpoint.
func TestClusterKilledTaskThenResume(t *testing.T) {
	binary(t)
	data := clusterData(t)
	run := filepath.Join(t.TempDir(), "run")
	const timeout = 20 * time.Second
	args := []string{"vgg8", "--data", data, "--epochs", "3", "--batch-size", "4", "--workers", "1", "--out", run,
		"--collective-timeout", timeout.String()}
	tasks := startCluster(t, 2, func(int) []string { return args })
	waitOutput(t, tasks[0], "epoch 2/3 batch", 2*time.Minute)
	if err := tasks[1].cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	code := waitTask(t, tasks[0], timeout+10*time.Second)
	took := time.Since(killed)
	msg := tasks[0].out.String()
	t.Logf("the chief ended %v after its peer's kill -9", took.Round(time.Millisecond))
	addr1 := strings.Split(tasks[0].cmd.Args[3], ",")[1]
	for _, want := range []string{"task 1 (" + addr1 + ") is unreachable", "restart all tasks with --resume " + run} {
		if !strings.Contains(msg, want) {
			t.Errorf("the chief's message lacks %q:\n%s", want, msg)
		}
	}
	if code == 0 || took > timeout {
		t.Errorf("the chief ended with %d after %v, want a failure within --collective-timeout %v", code, took, timeout)
	}
	if got := runState(t, run); got != "failed@1" {
		t.Errorf("status after the kill: %s, want failed@1", got)
	}
	_, st, err := runs.Run{Dir: run}.Checkpoints().Resolve("last")
	if err != nil || st.Epoch != 1 || st.Step != 20 {
		t.Fatalf("last checkpoint after the kill: %+v, %v; want the chief's epoch 1 (step 20)", st, err)
	}

	tasks = startCluster(t, 2, func(int) []string {
		return []string{"--resume", run, "--workers", "1", "--collective-timeout", timeout.String()}
	})
	waitAll(t, tasks, 3*time.Minute)
	if out := tasks[0].out.String(); !strings.Contains(out, "resuming "+run+" at epoch 2, step 20") {
		t.Errorf("the chief did not resume from epoch 1:\n%s", out)
	}
	if got := runState(t, run); got != "finished@3" {
		t.Errorf("status after the resume: %s, want finished@3", got)
	}
	checkConsistentRun(t, run, 3)
}

// A task that hangs (SIGSTOP) fails the others after --collective-timeout,
// with a message that says so.
func TestClusterHungTaskTimesOut(t *testing.T) {
	binary(t)
	if testing.Short() {
		t.Skip("waits for a collective timeout")
	}
	data := clusterData(t)
	run := filepath.Join(t.TempDir(), "run")
	const timeout = 8 * time.Second
	tasks := startCluster(t, 2, func(int) []string {
		return []string{"vgg8", "--data", data, "--epochs", "3", "--batch-size", "4", "--workers", "1", "--out", run,
			"--collective-timeout", timeout.String()}
	})
	waitOutput(t, tasks[0], "epoch 1/3 batch 2/", 2*time.Minute)
	if err := tasks[1].cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	code := waitTask(t, tasks[0], timeout+20*time.Second)
	took := time.Since(stopped)
	t.Logf("the chief ended %v after its peer stopped (--collective-timeout %v)", took.Round(time.Millisecond), timeout)
	if msg := tasks[0].out.String(); code == 0 || !strings.Contains(msg, "did not answer within --collective-timeout "+timeout.String()) {
		t.Errorf("exit %d, message:\n%s", code, msg)
	}
	if took < timeout-time.Second {
		t.Errorf("the chief gave up after %v, before the timeout %v", took, timeout)
	}
	tasks[1].cmd.Process.Signal(syscall.SIGKILL)
	var st struct{ State, Error string }
	raw, _ := os.ReadFile(filepath.Join(run, "status.json"))
	if json.Unmarshal(raw, &st); st.State != "failed" || !strings.Contains(st.Error, "--collective-timeout") {
		t.Errorf("status.json %s", raw)
	}
}
