package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kfash-tf/kfash-tf/graphs/runs"
)

// writeReportRun writes a run folder as train would, without training:
// config, one metrics row per validation accuracy, and a status.
func writeReportRun(t *testing.T, dir string, valAccs []float64, st runs.Status) {
	t.Helper()
	cfg := runs.Config{Network: "vgg8", InputSize: 150, Classes: []string{"a", "b", "c"}, Normalize: "none",
		Std: [3]float32{1, 1, 1}, Epochs: st.Epochs, BatchSize: 32, Select: runs.SelectValAcc,
		Optimizer: runs.OptimizerConfig{Name: runs.OptimizerAdamW}, Schedule: runs.Schedule{Kind: "constant", Base: 3e-4}}
	run, err := runs.Create(dir, cfg)
	if err != nil {
		t.Fatal(err)
	}
	best := -1.0
	for i, acc := range valAccs {
		e := runs.EpochResult{Epoch: i + 1, TrainAcc: acc + 0.1, ValAcc: acc, ValLoss: 1 - acc, ValMacroF1: acc,
			Best: acc > best, ValConfusion: [][]int64{{4, 1, 0}, {0, 5, 0}, {1, 1, 3}}}
		best = max(best, acc)
		if err := run.AppendMetrics(e); err != nil {
			t.Fatal(err)
		}
	}
	if err := run.WriteStatus(st); err != nil {
		t.Fatal(err)
	}
}

func TestReportCommand(t *testing.T) {
	binary(t)
	sweep := filepath.Join(t.TempDir(), "sweep")
	writeReportRun(t, filepath.Join(sweep, "good"), []float64{0.5, 0.8, 0.7}, runs.Status{State: runs.StateFinished, EpochsDone: 3, Epochs: 3})
	writeReportRun(t, filepath.Join(sweep, "broken"), []float64{0.6}, runs.Status{State: runs.StateFailed, EpochsDone: 1, Epochs: 3, Error: "out of memory"})
	out := filepath.Join(t.TempDir(), "report")

	stdout, stderr, code := run(t, "report", sweep, "--out", out)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if got := strings.TrimSpace(stdout); got != filepath.Join(out, "index.html") {
		t.Errorf("stdout %q, want the path of index.html", got)
	}
	if !strings.Contains(stderr, "best: good") {
		t.Errorf("stderr %q does not name the best run", stderr)
	}
	for _, f := range []string{"index.html", "report.md", "report.json", "comparison.png", "comparison.svg",
		"runs/good/accuracy.png", "runs/good/loss.svg", "runs/good/confusion.png", "runs/broken/accuracy.png"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Errorf("missing %s: %v", f, err)
		}
	}

	// JSON for machines, flags after the arguments.
	stdout, stderr, code = run(t, "report", sweep, "--format", "json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var rows []struct {
		Name          string
		Status        string
		Error         string
		SelectedEpoch int      `json:"selected_epoch"`
		ValAcc        *float64 `json:"val_acc"`
		Params        *int64
		Best          bool
	}
	if err := json.Unmarshal([]byte(stdout), &rows); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, stdout)
	}
	if len(rows) != 2 {
		t.Fatalf("%d rows, want 2", len(rows))
	}
	byName := map[string]int{}
	for i, r := range rows {
		byName[r.Name] = i
	}
	good, broken := rows[byName["good"]], rows[byName["broken"]]
	if !good.Best || good.SelectedEpoch != 2 || good.ValAcc == nil || *good.ValAcc != 0.8 || good.Params == nil || *good.Params != 299667 {
		t.Errorf("good run %+v", good)
	}
	if broken.Best || broken.Status != runs.StateFailed || broken.Error != "out of memory" {
		t.Errorf("failed run %+v", broken)
	}
}

func TestReportCommandErrors(t *testing.T) {
	binary(t)
	sweep := filepath.Join(t.TempDir(), "sweep")
	writeReportRun(t, filepath.Join(sweep, "r"), []float64{0.5}, runs.Status{State: runs.StateFinished, EpochsDone: 1, Epochs: 1})
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no --out", []string{"report", sweep}, "--out"},
		{"no argument", []string{"report", "--out", t.TempDir()}, "run folders"},
		{"missing folder", []string{"report", filepath.Join(sweep, "nope"), "--out", t.TempDir()}, "nope"},
		{"no runs inside", []string{"report", t.TempDir(), "--out", t.TempDir()}, "holds no run folder"},
		{"bad format", []string{"report", sweep, "--format", "pdf"}, "html, md or json"},
	}
	for _, tc := range tests {
		_, stderr, code := run(t, tc.args...)
		if code == 0 || !strings.Contains(stderr, tc.want) {
			t.Errorf("%s: exit %d, stderr %q; want failure mentioning %q", tc.name, code, stderr, tc.want)
		}
	}
	stdout, _, code := run(t, "report", "--help")
	if code != 0 || !strings.Contains(stdout, "Examples:") || !strings.Contains(stdout, "kfash-tf report runs/ --out report/") {
		t.Errorf("--help does not teach with examples:\n%s", stdout)
	}
}
