package sweep

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/kfash-tf/kfash-tf/graphs/runs"
	"github.com/kfash-tf/kfash-tf/internal/tail"
)

// runner runs a sweep's children one at a time and forwards signals to
// the current one.
type runner struct {
	s      setup
	exe    string
	w      io.Writer
	record *recordFile

	mu          sync.Mutex
	child       *os.Process // the run in progress, nil between runs
	signaled    bool        // an interrupt arrived: start no further run
	interruptAt string      // the run the interrupt stopped
}

// newRunner returns a runner of s's runs as children of the program exe,
// writing progress to w.
func newRunner(s setup, exe string, w io.Writer) *runner {
	return &runner{s: s, exe: exe, w: w}
}

// forwardSignals catches SIGINT, SIGTERM and SIGHUP for the whole sweep:
// the current child gets SIGINT or SIGTERM (it saves its checkpoint and
// exits), and no further run starts. The child is in its own process group,
// so a Ctrl-C on the terminal reaches it once, through the sweep.
func (sw *runner) forwardSignals() (stop func()) {
	ch := make(chan os.Signal, 4)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case sig := <-ch:
				sw.mu.Lock()
				sw.signaled = true
				if sw.child != nil {
					fmt.Fprintf(sw.w, "\nsweep: %v: letting the current run save its checkpoint...\n", sig)
					sw.child.Signal(childSignal(sig))
				}
				sw.mu.Unlock()
			case <-done:
				return
			}
		}
	}()
	return func() {
		signal.Stop(ch)
		close(done)
	}
}

// childSignal is what a child gets for a signal to the sweep: train saves
// its run on SIGINT and SIGTERM.
func childSignal(sig os.Signal) os.Signal {
	if sig == os.Interrupt {
		return os.Interrupt
	}
	return syscall.SIGTERM
}

// interrupted reports whether a signal asked the sweep to stop.
func (sw *runner) interrupted() bool {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	return sw.signaled
}

// do carries out the action for run i; errors are the sweep's own (writing
// sweep.json), a run's failure is recorded instead.
func (sw *runner) do(i int, r plannedRun, st runState) error {
	rec := &sw.record.Runs[i]
	rec.Action, rec.Error = st.action, ""
	var args []string
	switch st.action {
	case actSkip:
		fillFromRun(rec, st.dir)
		return sw.save()
	case actRefuse:
		fmt.Fprintf(sw.w, "%s: %s\n", r.Name, st.reason)
		rec.State, rec.Error = runs.StateFailed, st.reason
		return sw.save()
	case actResume, actExtend:
		args = r.resumeArgs(st.dir, st.cfg.Epochs)
	case actRestart:
		for _, f := range runFiles {
			if err := os.RemoveAll(filepath.Join(st.dir, f)); err != nil {
				rec.State, rec.Error = runs.StateFailed, fmt.Sprintf("cannot start %s over: %v", st.dir, err)
				return sw.save()
			}
		}
		args = rec.Args
	default:
		args = rec.Args
	}
	start := time.Now().UTC()
	rec.Started, rec.Ended, rec.State = &start, nil, runs.StateRunning
	if err := sw.save(); err != nil {
		return err
	}
	fmt.Fprintf(sw.w, "kfash-tf %s\n", shellJoin(args))
	res := sw.runChild(args)
	if !res.started && res.signaled {
		rec.State, rec.Started = statePending, nil
		return sw.save()
	}
	end := time.Now().UTC()
	rec.Ended = &end
	fillFromRun(rec, st.dir)
	switch {
	case res.err == nil:
		rec.State = runs.StateFinished
	case res.signaled && rec.State == runs.StateFinished:
		// Killed by the forwarded interrupt after it had written that it
		// finished: it did.
	case res.signaled || res.code == 130:
		rec.State = runs.StateInterrupted
		sw.mu.Lock()
		sw.signaled, sw.interruptAt = true, r.Name
		sw.mu.Unlock()
	default:
		rec.State, rec.Error = runs.StateFailed, res.failure(st.dir)
		fmt.Fprintf(sw.w, "failed %s (%v): %s\n", r.Name, res.err, lastLine(rec.Error))
	}
	return sw.save()
}

// childResult is how a child process ended.
type childResult struct {
	started  bool
	err      error // nil: exit status 0
	code     int   // exit status, -1 if killed by a signal
	signaled bool  // the sweep forwarded a signal while it ran
	tail     []string
}

// failure describes a failed child: the run's recorded error, else its
// last lines on stderr and how it ended.
func (r childResult) failure(dir string) string {
	if st, err := (runs.Run{Dir: dir}).ReadStatus(); err == nil && st.State == runs.StateFailed && st.Error != "" {
		return st.Error
	}
	return strings.Join(append(r.tail, "("+r.err.Error()+")"), "\n")
}

// runChild runs kfash-tf with args, streaming its output, and waits.
func (sw *runner) runChild(args []string) childResult {
	cmd := exec.Command(sw.exe, args...)
	tw := &tail.Writer{W: sw.w, Keep: 8}
	cmd.Stdout, cmd.Stderr = sw.w, tw
	// Its own process group: a terminal's Ctrl-C goes to the sweep only,
	// which forwards it exactly once.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	sw.mu.Lock()
	if sw.signaled {
		sw.mu.Unlock()
		return childResult{err: errors.New("not started: the sweep was interrupted"), code: -1, signaled: true}
	}
	if err := cmd.Start(); err != nil {
		sw.mu.Unlock()
		return childResult{err: err, code: -1, tail: []string{err.Error()}}
	}
	sw.child = cmd.Process
	sw.mu.Unlock()

	err := cmd.Wait()
	sw.mu.Lock()
	sw.child = nil
	signaled := sw.signaled
	sw.mu.Unlock()
	res := childResult{started: true, err: err, signaled: signaled, tail: tw.Lines()}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		res.code = ee.ExitCode()
	}
	return res
}

// save writes the sweep's record, OUT/sweep.json.
func (sw *runner) save() error { return sw.record.write(sw.s.out) }

// finish records the sweep's end, prints the summary and the next step,
// and returns the sweep's outcome: ErrInterrupted after an interrupt
// (commandLine, the sweep's arguments, is printed as the command that
// continues it), an error naming the failed runs.
func (sw *runner) finish(stdout io.Writer, commandLine []string) error {
	end := time.Now().UTC()
	var failed []string
	for _, r := range sw.record.Runs {
		if r.State == runs.StateFailed {
			failed = append(failed, r.Name)
		}
	}
	interrupted := sw.interrupted()
	switch {
	case interrupted:
		sw.record.State = runs.StateInterrupted
	case len(failed) > 0:
		sw.record.State, sw.record.Ended = runs.StateFailed, &end
	default:
		sw.record.State, sw.record.Ended = runs.StateFinished, &end
	}
	if err := sw.save(); err != nil {
		return err
	}
	fmt.Fprintln(sw.w)
	printSummary(stdout, sw.record)
	again := "kfash-tf " + shellJoin(commandLine)
	if interrupted {
		where := ""
		if sw.interruptAt != "" {
			where = " during " + sw.interruptAt
		}
		fmt.Fprintf(sw.w, "sweep interrupted%s; continue it with the same command:\n  %s\n", where, again)
		return ErrInterrupted
	}
	fmt.Fprintf(sw.w, "compare the runs: kfash-tf report %s --out %s\n", sw.s.out, filepath.Join(sw.s.out, "report"))
	if len(failed) > 0 {
		return fmt.Errorf("%d of %d runs failed: %s (errors in %s); run the same command again to retry them",
			len(failed), len(sw.record.Runs), strings.Join(failed, ", "), filepath.Join(sw.s.out, "sweep.json"))
	}
	return nil
}

// lastLine returns the last line of s that is not the exit status added
// by childResult.failure.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	for i := len(lines) - 1; i > 0; i-- {
		if !strings.HasPrefix(lines[i], "(") {
			return lines[i]
		}
	}
	return lines[0]
}

// shellJoin quotes args for a shell where needed.
func shellJoin(args []string) string {
	out := make([]string, len(args))
	for i, a := range args {
		if a != "" && strings.IndexFunc(a, func(r rune) bool {
			return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./=,:+@", r))
		}) < 0 {
			out[i] = a
			continue
		}
		out[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	return strings.Join(out, " ")
}
