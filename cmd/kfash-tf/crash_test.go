package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/kfash-tf/kfash-tf/graphs/runs"
	"github.com/kfash-tf/kfash-tf/internal/crashpoint"
)

// These tests kill `train` where a kill hurts (see package crashpoint for
// the hook) and check that every state it leaves resumes into a
// consistent run.

// crashPoints are the named points of a run folder's writes, in the order
// an epoch reaches them.
var crashPoints = []string{
	"run-created", "status-written",
	"metrics-csv", "metrics-appended",
	"ckpt-mkdir", "ckpt-variables", "ckpt-state", "ckpt-synced",
	"ckpt-best-temp", "ckpt-best-renamed", "ckpt-last-temp", "ckpt-last-renamed",
	"ckpt-prune", "ckpt-pruned-one", "ckpt-done",
}

// crashTrainArgs trains vgg8 on data into out for the given epochs.
func crashTrainArgs(data, out string, epochs int, extra ...string) []string {
	return append([]string{"train", "vgg8", "--data", data, "--out", out, "--epochs", strconv.Itoa(epochs),
		"--batch-size", "4", "--workers", "1", "--seed", "3"}, extra...)
}

// runKilledAt runs kfash-tf with the crash point spec armed and reports
// whether it died of SIGKILL (false: it got through without reaching it).
func runKilledAt(t *testing.T, spec string, args ...string) bool {
	t.Helper()
	cmd := exec.Command(binary(t), args...)
	cmd.Env = append(os.Environ(), crashpoint.Env+"="+spec)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL {
			return true
		}
	}
	if err != nil {
		t.Fatalf("%s: %v\n%s", spec, err, out)
	}
	return false
}

// checkConsistentRun asserts what a finished run of epochs epochs must be:
// one metrics row per epoch in order, status finished, last at the final
// epoch, best pointing at a complete folder of the epoch metrics mark best,
// and no checkpoint folder that no pointer names.
func checkConsistentRun(t *testing.T, dir string, epochs int) {
	t.Helper()
	run := runs.Run{Dir: dir}
	rows, err := run.ReadMetrics()
	if err != nil {
		t.Fatal(err)
	}
	bestEpoch := 0
	var got []string
	for i, r := range rows {
		got = append(got, strconv.Itoa(r.Epoch))
		if r.Epoch != i+1 {
			t.Errorf("metrics.jsonl epochs %v, want 1..%d once each", got, epochs)
		}
		if r.Best {
			bestEpoch = r.Epoch
		}
	}
	if len(rows) != epochs {
		t.Errorf("metrics.jsonl has %d rows (epochs %v), want %d", len(rows), got, epochs)
	}
	if csv, err := os.ReadFile(filepath.Join(dir, "metrics.csv")); err != nil || strings.Count(string(csv), "\n") != epochs+1 {
		t.Errorf("metrics.csv: %d lines, %v; want a header and %d rows", strings.Count(string(csv), "\n"), err, epochs)
	}
	if st, err := run.ReadStatus(); err != nil || st.State != runs.StateFinished || st.EpochsDone != epochs || st.BestEpoch != bestEpoch {
		t.Errorf("status %+v, %v; want finished after %d epochs, best %d", st, err, epochs, bestEpoch)
	}
	d := run.Checkpoints()
	referenced := map[string]bool{}
	for name, want := range map[string]int{"last": epochs, "best": bestEpoch} {
		prefix, st, err := d.Resolve(name)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if st.Epoch != want {
			t.Errorf("%s is epoch %d, want %d", name, st.Epoch, want)
		}
		if _, err := os.Stat(prefix + ".data-00000-of-00001"); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		referenced[filepath.Base(filepath.Dir(prefix))] = true
	}
	entries, _ := os.ReadDir(d.Dir)
	for _, e := range entries {
		if e.IsDir() && !referenced[e.Name()] {
			t.Errorf("checkpoint folder %s is named by no pointer", e.Name())
		}
	}
}

// Every named point of the writes of epoch 1 and of epoch 2: kill there,
// then `train --resume` must finish the run consistently, and the killed
// run's status must not claim it is still running.
func TestCrashPointsResume(t *testing.T) {
	binary(t)
	if testing.Short() {
		t.Skip("about 60 training processes")
	}
	data := tinyDataset(t, 4, 2)
	killed := 0
	for _, point := range crashPoints {
		for n := 1; n <= 2; n++ {
			spec := fmt.Sprintf("%s:%d", point, n)
			t.Run(spec, func(t *testing.T) {
				dir := filepath.Join(t.TempDir(), "run")
				// val_loss: epoch 2 is usually a new best, so both epochs
				// reach the best pointer's points.
				if !runKilledAt(t, spec, crashTrainArgs(data, dir, 2, "--select", "val_loss")...) {
					t.Logf("%s not reached", spec)
					checkConsistentRun(t, dir, 2)
					return
				}
				killed++
				if st, err := (runs.Run{Dir: dir}).ReadStatus(); err != nil || st.State == runs.StateRunning {
					t.Errorf("status after the kill: %+v, %v; want not running", st, err)
				}
				mustRun(t, "train", "--resume", dir)
				checkConsistentRun(t, dir, 2)
			})
		}
	}
	t.Logf("%d crash points killed the run and were recovered from", killed)
	if killed < len(crashPoints) {
		t.Errorf("only %d kills for %d points: the hook is not reached", killed, len(crashPoints))
	}
}

// Finding 4: killed before its first checkpoint was complete, a run
// resumes from epoch 1 with its config; status says crashed meanwhile and
// report shows it.
func TestResumeBeforeFirstCheckpoint(t *testing.T) {
	data := tinyDataset(t, 4, 2)
	dir := filepath.Join(t.TempDir(), "run")
	if !runKilledAt(t, "ckpt-variables:1", crashTrainArgs(data, dir, 2)...) {
		t.Fatal("train was not killed at ckpt-variables:1")
	}
	if out := mustRun(t, "report", dir, "--format", "json"); !strings.Contains(out, runs.StateCrashed) {
		t.Errorf("report of a killed run does not say crashed:\n%s", out)
	}
	out := mustRun(t, "train", "--resume", dir)
	if !strings.Contains(out, "starting again from epoch 1") {
		t.Errorf("resume without a checkpoint did not say it starts again:\n%s", out)
	}
	checkConsistentRun(t, dir, 2)
}

// Finding 4: a complete epoch folder whose pointers were never written (a
// kill while last.json's temp file was written, by an older kfash-tf) is
// resumed from, and best is rebuilt from it.
func TestResumeFindsCheckpointWithoutPointers(t *testing.T) {
	data := tinyDataset(t, 4, 2)
	dir := filepath.Join(t.TempDir(), "run")
	mustRun(t, crashTrainArgs(data, dir, 1)...)
	for _, p := range []string{"last.json", "best.json"} {
		if err := os.Remove(filepath.Join(dir, "checkpoints", p)); err != nil {
			t.Fatal(err)
		}
	}
	out := mustRun(t, "train", "--resume", dir, "--epochs", "2")
	if !strings.Contains(out, "resuming "+dir+" at epoch 2") {
		t.Errorf("did not resume at epoch 2:\n%s", out)
	}
	checkConsistentRun(t, dir, 2)
}

// Finding 5: killed just after last.json moved in epoch 1 (an older
// kfash-tf moved last first), the run has no best.json. The resumed run
// must not prune epoch 1 while metrics call it best. A learning rate of
// 1e-12 leaves the weights as they are, so no later epoch is strictly
// better and epoch 1 stays best.
func TestResumeKeepsBestWithoutPointer(t *testing.T) {
	data := tinyDataset(t, 4, 2)
	dir := filepath.Join(t.TempDir(), "run")
	mustRun(t, crashTrainArgs(data, dir, 1, "--lr", "1e-12")...)
	if err := os.Remove(filepath.Join(dir, "checkpoints", "best.json")); err != nil {
		t.Fatal(err)
	}
	mustRun(t, "train", "--resume", dir, "--epochs", "3")
	checkConsistentRun(t, dir, 3)
}

// Finding 7: a run folder held by another process is refused at once,
// naming the process, by --resume and by --out alike.
func TestTrainRefusesLockedRun(t *testing.T) {
	data := tinyDataset(t, 4, 2)
	dir := filepath.Join(t.TempDir(), "run")
	mustRun(t, crashTrainArgs(data, dir, 1)...)
	// Hold the lock as a running train would (flock on RUN/.lock).
	f, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	fmt.Fprintf(f, "%d %s\n", os.Getpid(), host)
	for _, args := range [][]string{
		{"train", "--resume", dir, "--epochs", "2"},
		crashTrainArgs(data, dir, 1),
	} {
		_, stderr, code := run(t, args...)
		if code == 0 || !strings.Contains(stderr, "process "+strconv.Itoa(os.Getpid())) {
			t.Errorf("kfash-tf %s on a locked run: exit %d\n%s", strings.Join(args, " "), code, stderr)
		}
	}
	if n := metricsRows(t, dir); n != 1 {
		t.Errorf("locked run got %d metrics rows, want 1", n)
	}
	syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	mustRun(t, "train", "--resume", dir, "--epochs", "2")
	checkConsistentRun(t, dir, 2)
}

// A damaged last checkpoint: the error suggests --from best, and --from
// best continues from the best epoch, redoing the later ones.
func TestResumeFromBest(t *testing.T) {
	data := tinyDataset(t, 4, 2)
	dir := filepath.Join(t.TempDir(), "run")
	mustRun(t, crashTrainArgs(data, dir, 2, "--lr", "1e-12")...) // best 1, last 2
	ptr, err := os.ReadFile(filepath.Join(dir, "checkpoints", "last.json"))
	if err != nil {
		t.Fatal(err)
	}
	var p struct{ Folder string }
	if err := json.Unmarshal(ptr, &p); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "checkpoints", p.Folder, "variables.index"), []byte("damaged"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, stderr, code := run(t, "train", "--resume", dir, "--epochs", "3")
	if code == 0 || !strings.Contains(stderr, "--resume "+dir+" --from best") {
		t.Fatalf("resume from a damaged last: exit %d, want an error suggesting --from best\n%s", code, stderr)
	}
	if strings.Contains(stderr, "OOM") {
		t.Errorf("TensorFlow's OOM hint shown:\n%s", stderr)
	}
	out := mustRun(t, "train", "--resume", dir, "--epochs", "3", "--from", "best")
	if !strings.Contains(out, "resuming "+dir+" at epoch 2") {
		t.Errorf("--from best did not resume after epoch 1:\n%s", out)
	}
	checkConsistentRun(t, dir, 3)
}

// Finding 5's other half: export asked for best never silently uses last.
// A best.json lost to a kill is found again from metrics.jsonl (and said
// so); a run with no best at all is exported from last with a warning.
func TestExportExplainsCheckpointChoice(t *testing.T) {
	data := tinyDataset(t, 4, 2)
	dir := filepath.Join(t.TempDir(), "run")
	exp := filepath.Join(t.TempDir(), "export")
	mustRun(t, crashTrainArgs(data, dir, 1)...)
	if err := os.Remove(filepath.Join(dir, "checkpoints", "best.json")); err != nil {
		t.Fatal(err)
	}
	stdout, stderr, code := run(t, "export", dir, "--out", exp)
	if code != 0 || !strings.Contains(stderr, "best.json is missing") || !strings.Contains(stdout, "checkpoint best") {
		t.Errorf("export without best.json: exit %d\n%s%s", code, stdout, stderr)
	}
	if err := os.Remove(filepath.Join(dir, "metrics.jsonl")); err != nil {
		t.Fatal(err)
	}
	stdout, stderr, code = run(t, "export", dir, "--out", exp, "--version", "2")
	if code != 0 || !strings.Contains(stderr, "has no best checkpoint: exporting last") {
		t.Errorf("export of a run without best: exit %d\n%s%s", code, stdout, stderr)
	}
}
