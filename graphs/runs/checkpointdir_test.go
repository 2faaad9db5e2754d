package runs_test

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/kfash-tf/kfash-tf/graphs/runs"
)

// fakeSave writes the files of a Saver checkpoint without TensorFlow: the
// folder logic only needs them to exist.
func fakeSave(prefix string) error {
	for _, suffix := range []string{".index", ".data-00000-of-00001"} {
		if err := os.WriteFile(prefix+suffix, []byte(prefix), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// epochState is a checkpoint state at the end of epoch with the loop's best
// epoch best.
func epochState(epoch, best int) runs.CheckpointState {
	return runs.CheckpointState{Epoch: epoch, Step: int64(10 * epoch), Loop: &runs.LoopState{Epoch: epoch, Step: int64(10 * epoch), BestEpoch: best}}
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

func resolvedEpoch(t *testing.T, d runs.CheckpointDir, name string) int {
	t.Helper()
	_, st, err := d.Resolve(name)
	if err != nil {
		t.Fatalf("Resolve(%s): %v", name, err)
	}
	return st.Epoch
}

// Finding 5: an older kfash-tf killed right after "last" moved in epoch 1
// left no best.json. The next checkpoint (epoch 2, not a new best) must
// point "best" at epoch 1 instead of pruning its folder.
func TestCheckpointDirKeepsBestWithoutPointer(t *testing.T) {
	d := runs.CheckpointDir{Dir: t.TempDir()}
	if err := d.WriteWith(fakeSave, []string{"last"}, epochState(1, 1)); err != nil {
		t.Fatal(err)
	}
	if err := d.WriteWith(fakeSave, []string{"last"}, epochState(2, 1)); err != nil {
		t.Fatal(err)
	}
	if got := resolvedEpoch(t, d, "best"); got != 1 {
		t.Errorf("best is epoch %d, want 1", got)
	}
	if got := checkpointFolders(t, d.Dir); strings.Join(got, ",") != "epoch-0001,epoch-0002" {
		t.Errorf("folders %v, want epoch-0001 kept for best", got)
	}
}

// A kill between the two renames of epoch 2 (best moved, last not) leaves
// best ahead of the resume point; ReconcileBest brings it back to the
// loop's best epoch, whose folder still exists.
func TestCheckpointDirReconcileBestAhead(t *testing.T) {
	d := runs.CheckpointDir{Dir: t.TempDir()}
	if err := d.WriteWith(fakeSave, []string{"last", "best"}, epochState(1, 1)); err != nil {
		t.Fatal(err)
	}
	// What the kill leaves: epoch 2 complete, only best moved.
	if err := d.WriteWith(fakeSave, []string{"best"}, epochState(2, 2)); err != nil {
		t.Fatal(err)
	}
	if err := d.ReconcileBest(1); err != nil {
		t.Fatal(err)
	}
	if got := resolvedEpoch(t, d, "best"); got != 1 {
		t.Errorf("best is epoch %d after ReconcileBest(1), want 1", got)
	}
	if err := d.ReconcileBest(0); err != nil { // no best yet: nothing to do
		t.Fatal(err)
	}
}

// Finding 4: complete folders without pointers (a kill before or while
// last.json was written) are found; half-written ones are not; the best
// epoch is found from metrics when best.json is missing.
func TestRunResolveCheckpointWithoutPointers(t *testing.T) {
	run := runs.Run{Dir: t.TempDir()}
	d := run.Checkpoints()
	if _, err := run.ResolveCheckpoint("last"); !errors.Is(err, runs.ErrNoCheckpoint) {
		t.Fatalf("empty run: %v, want ErrNoCheckpoint", err)
	}
	for epoch := 1; epoch <= 2; epoch++ {
		if err := d.WriteWith(fakeSave, []string{"last"}, epochState(epoch, 1)); err != nil {
			t.Fatal(err)
		}
	}
	// (Writing kept epoch 1 as the loop's best: drop both pointers.)
	for _, name := range []string{"last.json", "best.json"} {
		if err := os.Remove(filepath.Join(d.Dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	// A half-written epoch 3: variables but no state.json.
	if err := os.MkdirAll(filepath.Join(d.Dir, "epoch-0003"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := fakeSave(filepath.Join(d.Dir, "epoch-0003", "variables")); err != nil {
		t.Fatal(err)
	}
	rc, err := run.ResolveCheckpoint("last")
	if err != nil || rc.State.Epoch != 2 || !strings.Contains(rc.Recovered, "epoch-0002") {
		t.Errorf("last without last.json: %+v, %v; want epoch-0002, recovered", rc, err)
	}
	if _, err := run.ResolveCheckpoint("best"); !errors.Is(err, runs.ErrNoCheckpoint) {
		t.Errorf("best without best.json or metrics: %v, want ErrNoCheckpoint", err)
	}
	for epoch := 1; epoch <= 2; epoch++ {
		if err := run.AppendMetrics(runs.EpochResult{Epoch: epoch, Best: epoch == 1}); err != nil {
			t.Fatal(err)
		}
	}
	rc, err = run.ResolveCheckpoint("best")
	if err != nil || rc.State.Epoch != 1 || !strings.Contains(rc.Recovered, "epoch-0001") {
		t.Errorf("best from metrics: %+v, %v; want epoch-0001, recovered", rc, err)
	}
}

// Finding 7: one writer per run folder; the second is told who holds it,
// and the lock is free again once released.
func TestLockDirIsExclusive(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	first, err := runs.LockDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	_, err = runs.LockDir(dir)
	if !errors.Is(err, runs.ErrLocked) || !strings.Contains(err.Error(), "process "+strconv.Itoa(os.Getpid())) {
		t.Fatalf("second lock: %v, want ErrLocked naming process %d", err, os.Getpid())
	}
	if err := first.Release(); err != nil {
		t.Fatal(err)
	}
	again, err := runs.LockDir(dir)
	if err != nil {
		t.Fatalf("lock after release: %v", err)
	}
	again.Release()
}

// deadPID returns the PID of a process that has exited and been reaped.
func deadPID(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Skip("cannot run true:", err)
	}
	return cmd.Process.Pid
}

// A "running" status tells the truth: crashed when its writer is gone (lock
// free, or the recorded process dead), running while the lock is held or
// when nothing can be known (an older status, another host).
func TestReadStatusCrashed(t *testing.T) {
	host, _ := os.Hostname()
	cases := []struct {
		name   string
		status runs.Status
		lock   string // "held", "free" or "" (no lock file)
		want   string
	}{
		{"lock held", runs.Status{State: runs.StateRunning, PID: deadPID(t), Host: host}, "held", runs.StateRunning},
		{"lock free", runs.Status{State: runs.StateRunning, PID: os.Getpid(), Host: host}, "free", runs.StateCrashed},
		{"dead process, no lock file", runs.Status{State: runs.StateRunning, PID: deadPID(t), Host: host}, "", runs.StateCrashed},
		{"live process, no lock file", runs.Status{State: runs.StateRunning}, "", runs.StateRunning},
		{"other host", runs.Status{State: runs.StateRunning, PID: deadPID(t), Host: host + "-elsewhere"}, "", runs.StateRunning},
		{"finished", runs.Status{State: runs.StateFinished, PID: deadPID(t), Host: host}, "free", runs.StateFinished},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			run := runs.Run{Dir: t.TempDir()}
			if c.lock != "" {
				l, err := runs.LockDir(run.Dir)
				if err != nil {
					t.Fatal(err)
				}
				if c.lock == "held" {
					defer l.Release()
				} else {
					l.Release()
				}
			}
			if err := run.WriteStatus(c.status); err != nil {
				t.Fatal(err)
			}
			got, err := run.ReadStatus()
			if err != nil || got.State != c.want {
				t.Errorf("state %q, %v; want %q", got.State, err, c.want)
			}
		})
	}
}

// An old status.json (no pid, no host) reads as before.
func TestReadStatusOldFormat(t *testing.T) {
	run := runs.Run{Dir: t.TempDir()}
	if err := os.WriteFile(filepath.Join(run.Dir, "status.json"), []byte(`{"state":"running","epochs_done":1,"epochs":3,"updated":"2024-01-01T00:00:00Z"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	st, err := run.ReadStatus()
	if err != nil || st.State != runs.StateRunning || st.EpochsDone != 1 {
		t.Errorf("old status: %+v, %v", st, err)
	}
}

// Abandon removes a folder LockDir made and nothing else wrote into, and
// only that: a folder that existed, or that a run was written into, stays.
func TestLockAbandonRemovesOnlyItsEmptyFolder(t *testing.T) {
	fresh := filepath.Join(t.TempDir(), "run")
	l, err := runs.LockDir(fresh)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Abandon(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(fresh); !os.IsNotExist(err) {
		t.Errorf("abandoned fresh folder still there: %v", err)
	}

	existing := t.TempDir()
	if l, err = runs.LockDir(existing); err != nil {
		t.Fatal(err)
	}
	l.Abandon()
	if _, err := os.Stat(existing); err != nil {
		t.Errorf("a folder that existed before the lock was removed: %v", err)
	}

	written := filepath.Join(t.TempDir(), "run")
	if l, err = runs.LockDir(written); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(written, "config.json"), []byte("{}"), 0o644)
	l.Abandon()
	if _, err := os.Stat(filepath.Join(written, "config.json")); err != nil {
		t.Errorf("a folder with a run in it was removed: %v", err)
	}
}
