package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kfash-tf/kfash-tf/augment/augmenttest"
)

// tinyRun trains vgg8 for one epoch on a generated dataset and returns the
// run folder and the dataset.
func tinyRun(t *testing.T) (runDir, data string) {
	t.Helper()
	data = tinyDataset(t, 6, 4)
	runDir = filepath.Join(t.TempDir(), "run")
	mustRun(t, "train", "vgg8", "--data", data, "--epochs", "1", "--batch-size", "6", "--out", runDir)
	return runDir, data
}

func TestEvaluateReport(t *testing.T) {
	runDir, data := tinyRun(t)
	stdout, stderr, code := run(t, "evaluate", runDir, "--data", data, "--format", "json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var rep struct {
		Accuracy float64
		Loss     float64
		Examples int
		MacroF1  float64 `json:"macro_f1"`
		PerClass []struct {
			Class   string
			Support int64
			F1      float64
		} `json:"per_class"`
		ConfusionMatrix [][]int64 `json:"confusion_matrix"`
	}
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, stdout)
	}
	if rep.Examples != 12 || len(rep.PerClass) != 3 || len(rep.ConfusionMatrix) != 3 {
		t.Fatalf("report %+v", rep)
	}
	var diag, total int64
	for i, row := range rep.ConfusionMatrix {
		var rowSum int64
		for j, v := range row {
			total += v
			rowSum += v
			if i == j {
				diag += v
			}
		}
		if rowSum != rep.PerClass[i].Support || rowSum != 4 {
			t.Errorf("class %s: confusion row sums to %d, support %d, want 4", rep.PerClass[i].Class, rowSum, rep.PerClass[i].Support)
		}
	}
	if total != 12 || float64(diag)/12 != rep.Accuracy {
		t.Errorf("accuracy %v does not match the confusion matrix (%d/%d)", rep.Accuracy, diag, total)
	}
	if rep.Loss <= 0 {
		t.Errorf("loss %v", rep.Loss)
	}
	if _, err := os.Stat(filepath.Join(runDir, "evaluation-validation.json")); err != nil {
		t.Errorf("report not written into the run folder: %v", err)
	}
	text := mustRun(t, "evaluate", runDir, "--data", data)
	for _, want := range []string{"precision", "recall", "f1-score", "support", "macro avg", "weighted avg", "confusion matrix"} {
		if !strings.Contains(text, want) {
			t.Errorf("text report lacks %q", want)
		}
	}
}

// Classes are matched by name: a class of the run missing from the data is
// an error; an extra class is reported and ignored.
func TestEvaluateClassMatching(t *testing.T) {
	runDir, _ := tinyRun(t)
	missing := filepath.Join(t.TempDir(), "missing")
	augmenttest.Write(missing, augmenttest.Spec{Classes: []string{"circle", "square"}, PerClass: map[string]int{"Validation": 2}, Size: 32})
	_, stderr, code := run(t, "evaluate", runDir, "--data", missing)
	if code == 0 || !strings.Contains(stderr, "stripe") {
		t.Errorf("missing class: exit %d, stderr %q should name 'stripe'", code, stderr)
	}
	extra := filepath.Join(t.TempDir(), "extra")
	augmenttest.Write(extra, augmenttest.Spec{Classes: []string{"circle", "square", "stripe", "zigzag"}, PerClass: map[string]int{"all": 2}, Size: 32})
	// A flat folder of class folders (no split folders).
	flat := filepath.Join(extra, "all")
	_, stderr, code = run(t, "evaluate", runDir, "--data", flat)
	if code != 0 || !strings.Contains(stderr, "zigzag") {
		t.Errorf("extra class: exit %d, stderr %q should report 'zigzag'", code, stderr)
	}
}
