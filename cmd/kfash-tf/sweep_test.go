package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kfash-tf/kfash-tf/internal/testlog"
)

// tinyPlan writes a plan of vgg8 runs of one epoch on the tiny dataset,
// with runs given as YAML list items.
func tinyPlan(t *testing.T, runs string) string {
	t.Helper()
	plan := "classes: [circle, square, stripe]\n" +
		"defaults:\n  epochs: 1\n  batch-size: 2\n  workers: 1\n" +
		"runs:\n" + runs
	path := filepath.Join(t.TempDir(), "plan.yaml")
	if err := os.WriteFile(path, []byte(plan), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func sweepRunState(t *testing.T, dir string) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dir, "status.json"))
	if err != nil {
		return "absent"
	}
	var st struct {
		State string `json:"state"`
	}
	if err := json.Unmarshal(raw, &st); err != nil {
		t.Fatalf("%s/status.json: %v", dir, err)
	}
	return st.State
}

type sweepJSON struct {
	State string `json:"state"`
	Runs  []struct {
		Name       string   `json:"name"`
		State      string   `json:"state"`
		Action     string   `json:"action"`
		EpochsDone int      `json:"epochs_done"`
		BestValAcc *float64 `json:"best_val_acc"`
		Error      string   `json:"error"`
	} `json:"runs"`
}

func readSweep(t *testing.T, out string) sweepJSON {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(out, "sweep.json"))
	if err != nil {
		t.Fatal(err)
	}
	var s sweepJSON
	if err := json.Unmarshal(raw, &s); err != nil {
		t.Fatalf("sweep.json: %v\n%s", err, raw)
	}
	return s
}

type fileStamp struct {
	data  []byte
	mtime time.Time
}

func stamp(t *testing.T, path string) fileStamp {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	info, _ := os.Stat(path)
	return fileStamp{data, info.ModTime()}
}

// A sweep of two runs interrupted once the first has finished, inside the
// second's epoch, stops with 130; run again, it skips the first (leaving its
// files alone) and resumes the second.
func TestSweepInterruptedResumesWithTheRemainingRun(t *testing.T) {
	bin := binary(t)
	data := tinyDataset(t, 4, 2)
	plan := tinyPlan(t, "  - network: vgg8\n    lr: [1e-3, 2e-3]\n")
	out := filepath.Join(t.TempDir(), "sweep")
	args := []string{"sweep", "--plan", plan, "--data", data, "--out", out}
	first, second := filepath.Join(out, "vgg8-lr1e-3"), filepath.Join(out, "vgg8-lr2e-3")

	cmd := exec.Command(bin, args...)
	var stderr testlog.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// The sweep announces the second run once the first one has ended; the
	// interrupt comes once the second has trained a batch (of six).
	secondTraining := func() bool {
		_, after, ok := strings.Cut(stderr.String(), "[2/2]")
		return ok && strings.Contains(after, "batch 2/6")
	}
	deadline := time.Now().Add(120 * time.Second)
	for !secondTraining() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGINT)
	err := cmd.Wait()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 130 {
		t.Fatalf("interrupted sweep: %v, want exit status 130\n%s", err, stderr.String())
	}
	if !strings.Contains(stderr.String(), "continue it with the same command") {
		t.Errorf("no hint how to continue:\n%s", stderr.String())
	}
	if st := sweepRunState(t, first); st != "finished" {
		t.Fatalf("first run %s after the interrupt, want finished\n%s", st, stderr.String())
	}
	if st := sweepRunState(t, second); st != "interrupted" {
		t.Fatalf("second run %s after the interrupt, want interrupted\n%s", st, stderr.String())
	}
	if s := readSweep(t, out); s.State != "interrupted" || s.Runs[0].State != "finished" || s.Runs[1].State != "interrupted" {
		t.Errorf("sweep.json after the interrupt: %+v", s)
	}
	metrics := stamp(t, filepath.Join(first, "metrics.jsonl"))
	last := stamp(t, filepath.Join(first, "checkpoints", "last.json"))

	stdout, errOut, code := run(t, args...)
	if code != 0 {
		t.Fatalf("second sweep: exit %d\n%s", code, errOut)
	}
	if !strings.Contains(errOut, "skip vgg8-lr1e-3: finished") {
		t.Errorf("second sweep did not skip the finished run:\n%s", errOut)
	}
	if strings.Count(errOut, "kfash-tf train") != 1 || !strings.Contains(errOut, "train --resume "+second) || !strings.Contains(errOut, "resuming") {
		t.Errorf("second sweep should resume the second run only:\n%s", errOut)
	}
	if st := sweepRunState(t, second); st != "finished" {
		t.Errorf("second run %s, want finished\n%s", st, errOut)
	}
	for _, f := range []struct {
		path   string
		before fileStamp
	}{{filepath.Join(first, "metrics.jsonl"), metrics}, {filepath.Join(first, "checkpoints", "last.json"), last}} {
		if now := stamp(t, f.path); !bytes.Equal(now.data, f.before.data) || !now.mtime.Equal(f.before.mtime) {
			t.Errorf("%s changed although its run was finished", f.path)
		}
	}
	s := readSweep(t, out)
	if s.State != "finished" || len(s.Runs) != 2 {
		t.Fatalf("sweep.json: %+v", s)
	}
	for i, r := range s.Runs {
		if r.State != "finished" || r.EpochsDone != 1 || r.BestValAcc == nil {
			t.Errorf("sweep.json run %d: %+v", i, r)
		}
	}
	if s.Runs[0].Action != "skip" || s.Runs[1].Action != "resume" {
		t.Errorf("actions %q and %q, want skip and resume", s.Runs[0].Action, s.Runs[1].Action)
	}
	for _, want := range []string{"vgg8-lr1e-3", "vgg8-lr2e-3", "finished"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("summary lacks %q:\n%s", want, stdout)
		}
	}
	if !strings.Contains(errOut, "kfash-tf report "+out) {
		t.Errorf("no suggested report command:\n%s", errOut)
	}
}

// A run that fails is recorded and the sweep goes on with the next; the
// sweep's exit status says one failed.
func TestSweepFailingRunIsRecordedAndTheSweepGoesOn(t *testing.T) {
	data := tinyDataset(t, 4, 2)
	plan := tinyPlan(t, "  - network: vgg8\n    dropout: 1.5\n  - network: vgg8\n    lr: 1e-3\n")
	out := filepath.Join(t.TempDir(), "sweep")
	_, stderr, code := run(t, "sweep", "--plan", plan, "--data", data, "--out", out)
	if code == 0 {
		t.Fatalf("exit 0 with a failed run\n%s", stderr)
	}
	if !strings.Contains(stderr, "1 of 2 runs failed: vgg8-do1.5") {
		t.Errorf("the sweep's error does not name the failed run:\n%s", stderr)
	}
	s := readSweep(t, out)
	if s.State != "failed" || len(s.Runs) != 2 {
		t.Fatalf("sweep.json: %+v", s)
	}
	if r := s.Runs[0]; r.State != "failed" || !strings.Contains(r.Error, "dropout") {
		t.Errorf("failed run recorded as %+v", r)
	}
	if r := s.Runs[1]; r.State != "finished" {
		t.Errorf("run after the failure: %+v", r)
	}
	if st := sweepRunState(t, filepath.Join(out, "vgg8-lr1e-3")); st != "finished" {
		t.Errorf("run after the failure is %s", st)
	}
}

// --dry-run lists the runs and their states without training anything.
func TestSweepDryRunTrainsNothing(t *testing.T) {
	data := tinyDataset(t, 4, 2)
	plan := tinyPlan(t, "  - network: [vgg8, vgg10]\n    lr: [1e-3, 2e-3]\n")
	out := filepath.Join(t.TempDir(), "sweep")
	stdout := mustRun(t, "sweep", "--plan", plan, "--data", data, "--out", out, "--dry-run")
	for _, want := range []string{"4 runs", "vgg8-lr1e-3", "vgg8-lr2e-3", "vgg10-lr1e-3", "vgg10-lr2e-3", "new run"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("dry run lacks %q:\n%s", want, stdout)
		}
	}
	if _, err := os.Stat(out); err == nil {
		t.Errorf("--dry-run created %s", out)
	}
}
