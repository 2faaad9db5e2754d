package cluster

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The tasks in these tests are this test binary run again as a fake
// "train" (TestMain sees fakeTaskEnv): it reports what it was given and
// behaves as its arguments say, the same for every task, as a real
// cluster's tasks get the same arguments:
//
//	ready=DIR     write DIR/task-I (its pid) once its signal handlers are set
//	exit=I:CODE   task I exits with CODE once every task is ready
//	wait          wait for a signal, then write DIR/task-I.SIG and exit 130
//	ignore-term   ignore SIGTERM while waiting (only SIGKILL ends it)
//	slow-stop     take a second to stop after the signal
//	on-signal=I:CODE  task I exits with CODE after the signal, not 130
//
// Without wait, a task exits 0 at once. A waiting task gives up after a
// minute (exit 99), so a broken supervisor fails the test, not hangs it.
const fakeTaskEnv = "KFASH_CLUSTER_FAKE_TASK"

func TestMain(m *testing.M) {
	if os.Getenv(fakeTaskEnv) == "1" {
		os.Exit(fakeTask(os.Args[1:]))
	}
	os.Exit(m.Run())
}

// report is what a fake task prints on stdout, one JSON line.
type report struct {
	Task     int
	Cluster  string
	Rest     []string // its arguments other than --cluster and --task
	OwnGroup bool     // its process group is its own
	TFConfig string
}

func fakeTask(args []string) int {
	r := report{Task: -1, TFConfig: os.Getenv("TF_CONFIG")}
	for i := 0; i < len(args); i++ {
		switch args[i] {
		case "--cluster":
			i++
			r.Cluster = args[i]
		case "--task":
			i++
			r.Task, _ = strconv.Atoi(args[i])
		default:
			r.Rest = append(r.Rest, args[i])
		}
	}
	pgid, _ := syscall.Getpgid(0)
	r.OwnGroup = pgid == os.Getpid()
	b, _ := json.Marshal(r)
	fmt.Println(string(b))
	fmt.Fprintf(os.Stderr, "task %d says hello on stderr\n", r.Task)

	var readyDir string
	exitTask, exitCode, wait, slow := -1, 0, false, false
	signalTask, signalCode := -1, 0
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	for _, a := range r.Rest {
		switch {
		case strings.HasPrefix(a, "ready="):
			readyDir = strings.TrimPrefix(a, "ready=")
		case strings.HasPrefix(a, "exit="):
			fmt.Sscanf(strings.TrimPrefix(a, "exit="), "%d:%d", &exitTask, &exitCode)
		case strings.HasPrefix(a, "on-signal="):
			fmt.Sscanf(strings.TrimPrefix(a, "on-signal="), "%d:%d", &signalTask, &signalCode)
		case a == "wait":
			wait = true
		case a == "slow-stop":
			slow = true
		case a == "ignore-term":
			signal.Reset(syscall.SIGTERM)
			signal.Ignore(syscall.SIGTERM)
		}
	}
	if readyDir != "" {
		os.WriteFile(filepath.Join(readyDir, fmt.Sprintf("task-%d", r.Task)), []byte(strconv.Itoa(os.Getpid())), 0o644)
	}
	if r.Task == exitTask {
		n := len(strings.Split(r.Cluster, ","))
		for deadline := time.Now().Add(time.Minute); len(readyFiles(readyDir)) < n && time.Now().Before(deadline); {
			time.Sleep(10 * time.Millisecond)
		}
		fmt.Fprintf(os.Stderr, "task %d fails on purpose with %d\n", r.Task, exitCode)
		return exitCode
	}
	if !wait {
		return 0
	}
	select {
	case sig := <-sigs:
		if slow {
			time.Sleep(time.Second)
		}
		os.WriteFile(filepath.Join(readyDir, fmt.Sprintf("task-%d.%s", r.Task, sigName(sig))), nil, 0o644)
		if r.Task == signalTask {
			return signalCode
		}
		return 130
	case <-time.After(time.Minute):
		return 99
	}
}

func sigName(sig os.Signal) string {
	if sig == syscall.SIGINT {
		return "INT"
	}
	return "TERM"
}

// readyFiles returns the ready files in dir, by name: their pids.
func readyFiles(dir string) map[string]int {
	out := map[string]int{}
	m, _ := filepath.Glob(filepath.Join(dir, "task-*"))
	for _, f := range m {
		if strings.Contains(filepath.Base(f), ".") {
			continue
		}
		b, err := os.ReadFile(f)
		if pid, perr := strconv.Atoi(string(b)); err == nil && perr == nil {
			out[filepath.Base(f)] = pid
		}
	}
	return out
}

// fakeCluster returns options that run n fake tasks with the given
// behaviour, and the folder they signal readiness in.
func fakeCluster(t *testing.T, n int, behaviour ...string) (Options, *bytes.Buffer, *bytes.Buffer, string) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ready := t.TempDir()
	var stdout, stderr bytes.Buffer
	return Options{
		Exe:     exe,
		Command: append([]string{"train", "vgg8", "--data", "d", "ready=" + ready}, behaviour...),
		Tasks:   n, LogDir: filepath.Join(t.TempDir(), "logs"),
		Stdout: &stdout, Stderr: &stderr, Grace: 10 * time.Second,
		Env: append(os.Environ(), fakeTaskEnv+"=1", `TF_CONFIG={"cluster":{}}`),
	}, &stdout, &stderr, ready
}

// runWithSignals runs the cluster of opts in the background, its signals
// coming from sigs, and delivers its result on the returned channel.
func runWithSignals(t *testing.T, opts Options, sigs chan os.Signal) <-chan Result {
	t.Helper()
	opts.Signals = sigs
	done := make(chan Result, 1)
	go func() {
		res, err := Run(opts)
		if err != nil {
			t.Error(err)
		}
		done <- res
	}()
	return done
}

// waitReady waits until n tasks have written their ready files.
func waitReady(t *testing.T, dir string, n int) map[string]int {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if r := readyFiles(dir); len(r) == n {
			return r
		}
	}
	t.Fatalf("the tasks did not all start: %v", readyFiles(dir))
	return nil
}

func TestClusterLocalTasksGetDistinctPortsIndicesAndSameArgs(t *testing.T) {
	const n = 4
	opts, stdout, stderr, _ := fakeCluster(t, n)
	res, err := Run(opts)
	if err != nil {
		t.Fatal(err)
	}
	if res.ExitCode() != 0 || res.Failed != -1 {
		t.Fatalf("exit %d, failed %d: %s", res.ExitCode(), res.Failed, stderr)
	}
	// The chief's output is streamed, the others' are in their logs.
	outputs := []string{stdout.String()}
	for _, task := range res.Tasks[1:] {
		b, err := os.ReadFile(task.Log)
		if err != nil {
			t.Fatal(err)
		}
		if filepath.Dir(task.Log) != opts.LogDir || !strings.Contains(stderr.String(), opts.LogDir) {
			t.Errorf("log %s not in --logs %s, or the folder is not printed: %s", task.Log, opts.LogDir, stderr)
		}
		if !strings.Contains(string(b), fmt.Sprintf("task %d says hello on stderr", task.Index)) {
			t.Errorf("log of task %d lacks its stderr: %s", task.Index, b)
		}
		outputs = append(outputs, string(b))
	}
	if !strings.Contains(stderr.String(), "task 0 says hello on stderr") {
		t.Errorf("the chief's stderr was not streamed: %s", stderr)
	}
	seen := map[int]bool{}
	for i, out := range outputs {
		var r report
		if err := json.Unmarshal([]byte(strings.SplitN(out, "\n", 2)[0]), &r); err != nil {
			t.Fatalf("output %d: %v: %q", i, err, out)
		}
		if r.Task != i || seen[r.Task] {
			t.Errorf("output %d comes from task %d (seen before: %v)", i, r.Task, seen[r.Task])
		}
		seen[r.Task] = true
		addrs := strings.Split(r.Cluster, ",")
		ports := map[string]bool{}
		for _, a := range addrs {
			port, ok := strings.CutPrefix(a, "127.0.0.1:")
			if p, err := strconv.Atoi(port); !ok || err != nil || p <= 0 || p > 65535 {
				t.Errorf("task %d: address %q is not 127.0.0.1:PORT", i, a)
			}
			ports[port] = true
		}
		if len(addrs) != n || len(ports) != n || r.Cluster != strings.Join(addrsOf(res), ",") {
			t.Errorf("task %d: cluster %q, want %d distinct ports as %v", i, r.Cluster, n, addrsOf(res))
		}
		if !reflect.DeepEqual(r.Rest, opts.Command) {
			t.Errorf("task %d: arguments %q, want %q", i, r.Rest, opts.Command)
		}
		if !r.OwnGroup {
			t.Errorf("task %d shares a process group", i)
		}
		if r.TFConfig != "" {
			t.Errorf("task %d inherited TF_CONFIG %q", i, r.TFConfig)
		}
	}
}

func addrsOf(r Result) []string {
	var out []string
	for _, t := range r.Tasks {
		out = append(out, t.Addr)
	}
	return out
}

func TestClusterLocalFailureStopsTheOthersAndIsNamed(t *testing.T) {
	opts, _, stderr, ready := fakeCluster(t, 3, "wait", "exit=1:3")
	start := time.Now()
	res, err := Run(opts)
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 30*time.Second {
		t.Errorf("took %v: the other tasks were waited for, not stopped", took)
	}
	if res.Failed != 1 || res.ExitCode() != 3 || res.Interrupted {
		t.Fatalf("failed task %d, exit %d, interrupted %v; want task 1, exit 3:\n%s", res.Failed, res.ExitCode(), res.Interrupted, stderr)
	}
	for _, i := range []int{0, 2} {
		if _, err := os.Stat(filepath.Join(ready, fmt.Sprintf("task-%d.TERM", i))); err != nil || !res.Tasks[i].Stopped {
			t.Errorf("task %d was not sent SIGTERM (stopped %v)", i, res.Tasks[i].Stopped)
		}
	}
	msg := stderr.String()
	for _, want := range []string{"task 1 (" + res.Tasks[1].Addr + ") exit status 3", "task 1 fails on purpose with 3", res.Tasks[1].Log} {
		if !strings.Contains(msg, want) {
			t.Errorf("messages lack %q:\n%s", want, msg)
		}
	}
}

func TestClusterLocalChiefFailureIsItsExitStatus(t *testing.T) {
	opts, _, stderr, _ := fakeCluster(t, 2, "wait", "exit=0:4")
	res, err := Run(opts)
	if err != nil {
		t.Fatal(err)
	}
	if res.Failed != 0 || res.ExitCode() != 4 || !res.Tasks[1].Stopped {
		t.Fatalf("failed %d, exit %d, task 1 stopped %v:\n%s", res.Failed, res.ExitCode(), res.Tasks[1].Stopped, stderr)
	}
}

func TestClusterLocalKillsTasksThatIgnoreSIGTERM(t *testing.T) {
	opts, _, stderr, _ := fakeCluster(t, 3, "wait", "ignore-term", "exit=2:5")
	opts.Grace = 300 * time.Millisecond
	res, err := Run(opts)
	if err != nil {
		t.Fatal(err)
	}
	if res.Failed != 2 || res.ExitCode() != 5 {
		t.Fatalf("failed %d, exit %d:\n%s", res.Failed, res.ExitCode(), stderr)
	}
	for _, i := range []int{0, 1} {
		if got := res.Tasks[i]; got.Signal != syscall.SIGKILL || got.Code != -1 {
			t.Errorf("task %d ended %s, want killed by SIGKILL", i, got.Status())
		}
	}
	if !strings.Contains(stderr.String(), "killing them") {
		t.Errorf("the kill is not said:\n%s", stderr)
	}
}

func TestClusterLocalForwardsAnInterruptToEveryTask(t *testing.T) {
	const n = 3
	opts, _, stderr, ready := fakeCluster(t, n, "wait")
	sigs := make(chan os.Signal, 1)
	done := runWithSignals(t, opts, sigs)
	pids := waitReady(t, ready, n)
	// A task stopped by job control still gets the signal: the supervisor
	// resumes it.
	if err := syscall.Kill(pids["task-1"], syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	sigs <- os.Interrupt
	res := <-done
	if !res.Interrupted || res.Failed != -1 || res.ExitCode() != 130 {
		t.Fatalf("interrupted %v, failed %d, exit %d; want 130:\n%s", res.Interrupted, res.Failed, res.ExitCode(), stderr)
	}
	for i := range n {
		if _, err := os.Stat(filepath.Join(ready, fmt.Sprintf("task-%d.INT", i))); err != nil {
			t.Errorf("task %d did not get SIGINT: %s", i, res.Tasks[i].Status())
		}
	}
}

// Stopping after an interrupt can take long (the step in progress, the
// validation, the checkpoint): the tasks are not killed for it.
func TestClusterLocalGivesInterruptedTasksTheTimeTheyNeed(t *testing.T) {
	const n = 2
	opts, _, stderr, ready := fakeCluster(t, n, "wait", "slow-stop")
	opts.Grace = 100 * time.Millisecond
	sigs := make(chan os.Signal, 1)
	done := runWithSignals(t, opts, sigs)
	waitReady(t, ready, n)
	sigs <- syscall.SIGTERM
	res := <-done
	if res.ExitCode() != 130 || res.Failed != -1 {
		t.Errorf("exit %d, failed %d (%s); want 130:\n%s", res.ExitCode(), res.Failed, res.Reason, stderr)
	}
	for i := range n {
		if _, err := os.Stat(filepath.Join(ready, fmt.Sprintf("task-%d.TERM", i))); err != nil {
			t.Errorf("task %d was not let stop: %s", i, res.Tasks[i].Status())
		}
	}
}

// A task that fails while the cluster stops after an interrupt is named.
func TestClusterLocalFailureDuringInterruptIsNamed(t *testing.T) {
	const n = 3
	opts, _, stderr, ready := fakeCluster(t, n, "wait", "on-signal=2:7")
	sigs := make(chan os.Signal, 1)
	done := runWithSignals(t, opts, sigs)
	waitReady(t, ready, n)
	sigs <- os.Interrupt
	res := <-done
	if !res.Interrupted || res.Failed != 2 || res.ExitCode() != 7 {
		t.Errorf("interrupted %v, failed %d, exit %d; want task 2, 7:\n%s", res.Interrupted, res.Failed, res.ExitCode(), stderr)
	}
}

func TestClusterLocalSecondSignalKillsAtOnce(t *testing.T) {
	const n = 2
	opts, _, stderr, ready := fakeCluster(t, n, "wait", "ignore-term")
	sigs := make(chan os.Signal) // unbuffered: the second send waits for the first's handling
	done := runWithSignals(t, opts, sigs)
	waitReady(t, ready, n)
	start := time.Now()
	sigs <- syscall.SIGTERM // ignored by the tasks
	sigs <- syscall.SIGTERM
	res := <-done
	if took := time.Since(start); took > opts.Grace/2 {
		t.Errorf("took %v: the second signal did not kill at once", took)
	}
	for _, task := range res.Tasks {
		if task.Signal != syscall.SIGKILL {
			t.Errorf("task %d ended %s, want killed by SIGKILL", task.Index, task.Status())
		}
	}
	if !res.Interrupted || res.ExitCode() != 128+int(syscall.SIGKILL) || !strings.Contains(stderr.String(), "SIGTERM again") {
		t.Errorf("interrupted %v, exit %d:\n%s", res.Interrupted, res.ExitCode(), stderr)
	}
}

func TestClusterLocalStopsTasksStillRunningAfterTheChiefFinished(t *testing.T) {
	opts, _, stderr, _ := fakeCluster(t, 2, "wait", "exit=0:0")
	opts.Grace = 300 * time.Millisecond
	res, err := Run(opts)
	if err != nil {
		t.Fatal(err)
	}
	if res.Failed != 1 || res.ExitCode() == 0 || !strings.Contains(res.Reason, "after the chief ended") {
		t.Fatalf("failed %d (%s), exit %d:\n%s", res.Failed, res.Reason, res.ExitCode(), stderr)
	}
}

func TestClusterLocalRefusesBadTaskCounts(t *testing.T) {
	for _, n := range []int{0, -1, MaxTasks + 1} {
		if _, err := Run(Options{Exe: "/bin/true", Command: []string{"train"}, Tasks: n}); err == nil {
			t.Errorf("%d tasks accepted", n)
		}
	}
}

func TestFreePortsAreDistinctLoopbackPorts(t *testing.T) {
	ports, err := FreePorts(MaxTasks)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	for _, p := range ports {
		if p <= 0 || seen[p] {
			t.Fatalf("ports %v", ports)
		}
		seen[p] = true
	}
}

func TestClusterFlagsGoBeforeDoubleDash(t *testing.T) {
	for _, tc := range []struct{ command, want []string }{
		{[]string{"train", "vgg8"}, []string{"train", "vgg8", "--cluster", "c", "--task", "1"}},
		{[]string{"bench", "allreduce", "--", "x"}, []string{"bench", "allreduce", "--cluster", "c", "--task", "1", "--", "x"}},
	} {
		s := &supervisor{opts: Options{Command: tc.command}, cluster: "c"}
		if got := s.args(1); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%q: task 1 runs %q, want %q", tc.command, got, tc.want)
		}
	}
}

// Per-task arguments (cluster-local --gpu-per-task) follow --task, each
// task its own.
func TestClusterPerTaskArgs(t *testing.T) {
	gpu := func(i int) []string { return []string{"--gpus", strconv.Itoa(i)} }
	s := &supervisor{opts: Options{Command: []string{"train", "vgg8", "--", "x"}, PerTask: gpu}, cluster: "c"}
	for i := 0; i < 2; i++ {
		want := []string{"train", "vgg8", "--cluster", "c", "--task", strconv.Itoa(i), "--gpus", strconv.Itoa(i), "--", "x"}
		if got := s.args(i); !reflect.DeepEqual(got, want) {
			t.Errorf("task %d runs %q, want %q", i, got, want)
		}
	}
}
