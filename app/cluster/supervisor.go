// Package cluster runs a training cluster as local processes: it starts N
// copies of a program on one machine, each with its own loopback address
// and task index, streams the chief's output, logs the others', forwards
// signals, and stops every task when one fails. It is what
// `kfash-tf cluster-local` does; several processes stand in for several
// machines. Pure Go: it knows nothing of TensorFlow.
package cluster

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/kfash-tf/kfash-tf/internal/tail"
)

// DefaultGrace is Options.Grace when none is given: time for a task to
// end on its own once a peer has failed (its next collective fails at
// once) or the chief has ended.
const DefaultGrace = 30 * time.Second

// MaxTasks bounds the number of tasks: each is a whole training process
// with its own copy of the model and data pipeline.
const MaxTasks = 64

// Options say what to run and where its output goes.
type Options struct {
	// Exe is the program each task runs (cluster-local: os.Executable()).
	Exe string
	// Command is each task's command line without the program, e.g.
	// ["train", "vgg8", "--data", "photos/"]. Every task gets the same
	// one with "--cluster ADDRS --task I" appended (before a "--" in it,
	// which would make them positional arguments).
	Command []string
	// Tasks is the number of tasks, 1…MaxTasks. Task 0 is the chief.
	Tasks int
	// PerTask, when set, gives extra arguments for task i, appended with
	// --cluster and --task (cluster-local --gpu-per-task: "--gpus I").
	PerTask func(i int) []string
	// LogDir receives task-I.log for every task but the chief; created if
	// missing. Empty: a new folder under os.TempDir().
	LogDir string
	// Stdout and Stderr receive the chief's output as it comes (pass the
	// terminal's files and the chief sees a terminal, progress bar
	// included). The supervisor's own messages go to Stderr too.
	Stdout, Stderr io.Writer
	// Grace is how long tasks get to end after the SIGTERM that stops them
	// when one has failed, before SIGKILL; and how long the other tasks may
	// run on once the chief has ended. Zero or less: DefaultGrace.
	Grace time.Duration
	// Signals delivers the signals to forward (the caller does the
	// signal.Notify): the first os.Interrupt reaches every task as SIGINT,
	// anything else as SIGTERM, and the tasks get all the time they need
	// to stop together and save (validation in progress is finished
	// first); a second signal kills every task at once. Nil: none.
	Signals <-chan os.Signal
	// Name starts the supervisor's messages; empty: "cluster-local".
	Name string
	// Env is the tasks' environment; nil means os.Environ(). TF_CONFIG is
	// always removed from it: the tasks' cluster is the one given by
	// --cluster.
	Env []string
}

// Task is one task's address and how it ended.
type Task struct {
	Index int
	Addr  string // 127.0.0.1:PORT
	Log   string // its log file; empty for the chief, whose output is streamed
	// Code is the exit status, -1 if a signal ended it or it never ran.
	Code int
	// Signal is the signal that ended it, if one did.
	Signal syscall.Signal
	// Err is why it could not be started or waited for, if so.
	Err error
	// Stopped reports whether the supervisor signalled it (a forwarded
	// interrupt, or stopping the cluster) before it ended.
	Stopped bool

	tail *tail.Writer // a non-chief's last lines, to show when it fails
	log  *os.File     // its log file, closed when the task has ended
}

// Failed reports whether the task ended in any other way than exit
// status 0.
func (t Task) Failed() bool { return t.Err != nil || t.Code != 0 }

// Status describes how the task ended: "exit status 3", "killed by
// signal killed", "not started: …".
func (t Task) Status() string {
	switch {
	case t.Err != nil:
		return t.Err.Error()
	case t.Code == -1 && t.Signal != 0:
		return "killed by " + signalName(t.Signal)
	default:
		return "exit status " + strconv.Itoa(t.Code)
	}
}

// Result is how a cluster ended.
type Result struct {
	Tasks  []Task
	LogDir string
	// Interrupted reports whether a signal was forwarded to the tasks.
	Interrupted bool
	// Failed is the task whose failure stopped the cluster (it failed
	// first, on its own, or kept running Grace after the chief ended);
	// -1 if none did.
	Failed int
	// Reason says how Failed failed.
	Reason string
}

// ExitCode is the supervisor's exit status: that of the task that failed
// first (1 if a signal ended it), else the chief's (130 after an
// interrupt; 128+N if signal N ended it).
func (r Result) ExitCode() int {
	if r.Failed >= 0 {
		if c := r.Tasks[r.Failed].Code; c > 0 {
			return c
		}
		return 1
	}
	chief := r.Tasks[0]
	switch {
	case chief.Code >= 0 && chief.Err == nil:
		return chief.Code
	case chief.Signal != 0:
		return 128 + int(chief.Signal)
	default:
		return 1
	}
}

// Run starts opts.Tasks tasks on free loopback ports and waits for all of
// them to end. The returned error is the supervisor's own (no free ports,
// no log folder); how the tasks ended is in the Result.
func Run(opts Options) (Result, error) {
	if opts.Tasks < 1 || opts.Tasks > MaxTasks {
		return Result{}, fmt.Errorf("%d tasks: from 1 to %d", opts.Tasks, MaxTasks)
	}
	if len(opts.Command) == 0 {
		return Result{}, errors.New("no command to run")
	}
	ports, err := FreePorts(opts.Tasks)
	if err != nil {
		return Result{}, err
	}
	addrs := make([]string, len(ports))
	for i, p := range ports {
		addrs[i] = "127.0.0.1:" + strconv.Itoa(p)
	}
	logDir, err := makeLogDir(opts.LogDir)
	if err != nil {
		return Result{}, err
	}
	if opts.Stderr == nil {
		opts.Stderr = io.Discard
	}
	if opts.Grace <= 0 {
		opts.Grace = DefaultGrace
	}
	if opts.Name == "" {
		opts.Name = "cluster-local"
	}
	opts.Stdout, opts.Stderr = serialized(opts.Stdout, opts.Stderr)
	s := &supervisor{opts: opts, res: Result{LogDir: logDir, Failed: -1}, cluster: strings.Join(addrs, ",")}
	for i, a := range addrs {
		t := Task{Index: i, Addr: a, Code: -1}
		if i > 0 {
			t.Log = filepath.Join(logDir, fmt.Sprintf("task-%d.log", i))
		}
		s.res.Tasks = append(s.res.Tasks, t)
	}
	s.announce()
	s.run()
	return s.res, nil
}

func makeLogDir(dir string) (string, error) {
	if dir == "" {
		d, err := os.MkdirTemp("", "kfash-tf-cluster-")
		if err != nil {
			return "", fmt.Errorf("making a folder for the tasks' logs: %w", err)
		}
		return d, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("making the log folder: %w", err)
	}
	return dir, nil
}

// serialized returns stdout and stderr made safe for the chief's output
// and the supervisor's messages to share: files as they are (the chief
// then writes to the terminal itself and sees one), other writers behind
// one lock.
func serialized(stdout, stderr io.Writer) (io.Writer, io.Writer) {
	var mu sync.Mutex
	wrap := func(w io.Writer) io.Writer {
		if _, isFile := w.(*os.File); isFile || w == nil {
			return w
		}
		return &lockedWriter{mu: &mu, w: w}
	}
	return wrap(stdout), wrap(stderr)
}

// lockedWriter is a writer shared by goroutines.
type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// supervisor is one Run's state; only Run's goroutine touches it, the
// tasks' goroutines report through the exits channel.
type supervisor struct {
	opts    Options
	res     Result
	cluster string
	procs   []*exec.Cmd // nil for a task not started or already ended
	exits   chan exited
	running int
	fwd     syscall.Signal // the signal forwarded after an interrupt; 0 before one
	killed  bool           // SIGKILL was sent to every task
}

// endedAsAsked reports whether t ended as the supervisor asked it to, not
// by a failure of its own: killed by its SIGKILL, or, after an interrupt,
// exit status 130 (it stopped and, the chief, saved) or killed by the
// forwarded signal (before it could catch it).
func (s *supervisor) endedAsAsked(t Task) bool {
	if s.killed && t.Signal == syscall.SIGKILL {
		return true
	}
	return s.fwd != 0 && (t.Code == 130 || t.Signal == s.fwd)
}

// exited is a task's end, as its waiting goroutine saw it.
type exited struct {
	index int
	err   error
}

func (s *supervisor) say(format string, args ...any) {
	fmt.Fprintf(s.opts.Stderr, s.opts.Name+": "+format+"\n", args...)
}

func (s *supervisor) announce() {
	n := len(s.res.Tasks)
	s.say("%d task(s) on %s", n, s.cluster)
	switch n {
	case 1:
	case 2:
		s.say("task 0 (the chief) prints here; task 1 logs to %s", s.res.Tasks[1].Log)
	default:
		s.say("task 0 (the chief) prints here; tasks 1-%d log to %s", n-1,
			filepath.Join(s.res.LogDir, "task-N.log"))
	}
}

// args returns task i's command line.
func (s *supervisor) args(i int) []string {
	c := s.opts.Command
	at := slices.Index(c, "--")
	if at < 0 {
		at = len(c)
	}
	out := slices.Clone(c[:at])
	out = append(out, "--cluster", s.cluster, "--task", strconv.Itoa(i))
	if s.opts.PerTask != nil {
		out = append(out, s.opts.PerTask(i)...)
	}
	return append(out, c[at:]...)
}

// env returns the tasks' environment: without TF_CONFIG, which would
// name another cluster.
func (s *supervisor) env() []string {
	env := s.opts.Env
	if env == nil {
		env = os.Environ()
	}
	out := make([]string, 0, len(env))
	for _, kv := range env {
		if !strings.HasPrefix(kv, "TF_CONFIG=") {
			out = append(out, kv)
		}
	}
	return out
}

// run starts the tasks and supervises them until every one has ended.
func (s *supervisor) run() {
	n := len(s.res.Tasks)
	s.procs = make([]*exec.Cmd, n)
	s.exits = make(chan exited, n)
	for i := range s.res.Tasks {
		if err := s.start(i); err != nil {
			s.res.Tasks[i].Err = fmt.Errorf("not started: %w", err)
			s.fail(i, s.res.Tasks[i].Status())
			break
		}
	}
	var (
		killAt   <-chan time.Time // SIGKILL for what still runs
		overtime <-chan time.Time // the chief ended; the others are late
		stopping = s.res.Failed >= 0
	)
	if stopping {
		killAt = s.stop(syscall.SIGTERM)
	}
	for s.running > 0 {
		select {
		case e := <-s.exits:
			s.ended(e)
			t := s.res.Tasks[e.index]
			switch {
			case stopping:
			case t.Failed() && !s.endedAsAsked(t):
				s.fail(e.index, t.Status())
				stopping, killAt = true, s.stop(syscall.SIGTERM)
			case e.index == 0 && s.running > 0:
				overtime = time.After(s.opts.Grace)
			}
		case sig := <-s.opts.Signals:
			if s.res.Interrupted {
				s.say("%s again: killing every task now", signalName(sig))
				s.signalAll(syscall.SIGKILL)
				continue
			}
			s.res.Interrupted = true
			fwd := syscall.SIGTERM
			if sig == os.Interrupt {
				fwd = syscall.SIGINT
			}
			s.fwd = fwd
			s.say("%s: forwarding %s to every task; they stop together and the chief saves the run (%s again kills them now)",
				signalName(sig), signalName(fwd), signalName(sig))
			s.signalAll(fwd)
		case <-overtime:
			overtime = nil
			if stopping {
				continue
			}
			for i, p := range s.procs {
				if p != nil {
					s.fail(i, fmt.Sprintf("still running %v after the chief ended", s.opts.Grace))
					break
				}
			}
			stopping, killAt = true, s.stop(syscall.SIGTERM)
		case <-killAt:
			killAt = nil
			s.say("tasks still running %v after being asked to stop: killing them", s.opts.Grace)
			s.signalAll(syscall.SIGKILL)
		}
	}
	s.closeLogs()
	s.report()
}

// start starts task i.
func (s *supervisor) start(i int) error {
	t := &s.res.Tasks[i]
	cmd := exec.Command(s.opts.Exe, s.args(i)...)
	cmd.Env = s.env()
	cmd.SysProcAttr = taskProcAttr()
	if i == 0 {
		cmd.Stdout, cmd.Stderr = s.opts.Stdout, s.opts.Stderr
	} else {
		f, err := os.Create(t.Log)
		if err != nil {
			return err
		}
		t.log, t.tail = f, &tail.Writer{W: f, Keep: 10}
		cmd.Stdout, cmd.Stderr = t.tail, t.tail
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	s.procs[i] = cmd
	s.running++
	go func() { s.exits <- exited{index: i, err: cmd.Wait()} }()
	return nil
}

// ended records how a task ended.
func (s *supervisor) ended(e exited) {
	s.procs[e.index] = nil
	s.running--
	t := &s.res.Tasks[e.index]
	t.Code = 0
	var ee *exec.ExitError
	switch {
	case e.err == nil:
	case errors.As(e.err, &ee):
		t.Code = ee.ExitCode()
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			t.Signal = ws.Signal()
		}
	default:
		t.Code, t.Err = -1, e.err
	}
}

// fail records task i as the cause of the cluster's end, unless one is
// already recorded.
func (s *supervisor) fail(i int, reason string) {
	if s.res.Failed >= 0 {
		return
	}
	s.res.Failed, s.res.Reason = i, reason
	t := s.res.Tasks[i]
	s.say("task %d (%s) %s: stopping the other tasks", i, t.Addr, reason)
	if t.tail != nil {
		if lines := t.tail.Lines(); len(lines) > 0 {
			s.say("last lines of %s:\n    %s", t.Log, strings.Join(lines, "\n    "))
		}
	}
}

// stop sends sig to every running task and returns when to kill them.
func (s *supervisor) stop(sig syscall.Signal) <-chan time.Time {
	s.signalAll(sig)
	return time.After(s.opts.Grace)
}

// signalAll sends sig to every task still running, marking it stopped,
// and a SIGCONT after it: a task stopped by job control (Ctrl-Z on its
// own, SIGSTOP) would otherwise hold the signal until someone resumes it.
func (s *supervisor) signalAll(sig syscall.Signal) {
	for i, p := range s.procs {
		if p == nil {
			continue
		}
		s.res.Tasks[i].Stopped = true
		s.killed = s.killed || sig == syscall.SIGKILL
		// Process.Signal, not kill(pid): it cannot reach a recycled PID.
		// An error means the task has just ended; its exit is on its way.
		_ = p.Process.Signal(sig)
		if sig != syscall.SIGKILL {
			_ = p.Process.Signal(syscall.SIGCONT)
		}
	}
}

func (s *supervisor) closeLogs() {
	for _, t := range s.res.Tasks {
		if t.log != nil {
			t.log.Close()
		}
	}
}

// report prints how every task ended when anything went wrong.
func (s *supervisor) report() {
	r := s.res
	clean := r.Failed < 0 && !r.Interrupted
	for _, t := range r.Tasks {
		clean = clean && !t.Failed()
	}
	if clean {
		return
	}
	var b strings.Builder
	for _, t := range r.Tasks {
		role, how := "", t.Status()
		if t.Index == 0 {
			role = " (chief)"
		}
		if t.Stopped {
			how += ", after being signalled"
		}
		if t.Index == r.Failed {
			how += "  <- " + r.Reason
		}
		fmt.Fprintf(&b, "\n  task %d%-8s %-16s %s", t.Index, role, t.Addr, how)
		if t.Log != "" {
			fmt.Fprintf(&b, "  (%s)", t.Log)
		}
	}
	s.say("how the tasks ended:%s", b.String())
}

// signalName is a signal as kill(1) names it: SIGTERM, not "terminated".
func signalName(sig os.Signal) string {
	names := map[os.Signal]string{
		syscall.SIGINT: "SIGINT", syscall.SIGTERM: "SIGTERM", syscall.SIGHUP: "SIGHUP",
		syscall.SIGKILL: "SIGKILL", syscall.SIGQUIT: "SIGQUIT", syscall.SIGABRT: "SIGABRT",
		syscall.SIGSEGV: "SIGSEGV", syscall.SIGBUS: "SIGBUS", syscall.SIGPIPE: "SIGPIPE",
	}
	if n, ok := names[sig]; ok {
		return n
	}
	return sig.String()
}
