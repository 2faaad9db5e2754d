package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kfash-tf/kfash-tf/graphs/runs"
)

// predict classifies good files, names each bad one, never crashes, and
// exits 1 when any file failed.
func TestPredictGoodAndBadFiles(t *testing.T) {
	runDir, data := tinyRun(t)
	good := filepath.Join(data, "Validation", "circle", "000.png")
	dir := t.TempDir()
	junk := filepath.Join(dir, "junk.jpg")
	os.WriteFile(junk, []byte("this is text"), 0o644)
	raw, _ := os.ReadFile(good)
	truncated := filepath.Join(dir, "truncated.png")
	os.WriteFile(truncated, raw[:len(raw)/2], 0o644)

	stdout, stderr, code := run(t, "predict", runDir, good, junk, truncated, "--format", "json", "--top", "2")
	if code != 1 {
		t.Fatalf("exit %d, want 1 (some files failed)\n%s", code, stderr)
	}
	for _, bad := range []string{"junk.jpg", "truncated.png"} {
		if !strings.Contains(stderr, bad) {
			t.Errorf("stderr does not name %s:\n%s", bad, stderr)
		}
	}
	var preds []struct {
		File          string
		Class         string
		Top           []struct{ Class string }
		Probabilities map[string]float64
	}
	if err := json.Unmarshal([]byte(stdout), &preds); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, stdout)
	}
	if len(preds) != 1 || preds[0].File != good || len(preds[0].Top) != 2 || len(preds[0].Probabilities) != 3 {
		t.Fatalf("predictions %+v", preds)
	}
	sum := 0.0
	for _, p := range preds[0].Probabilities {
		sum += p
	}
	if sum < 0.999 || sum > 1.001 {
		t.Errorf("probabilities sum to %v", sum)
	}
	if _, _, code := run(t, "predict", runDir, good); code != 0 {
		t.Errorf("a good file alone: exit %d", code)
	}
}

// A run folder without a checkpoint is refused with the command that
// trains it (graphs' typed error, worded in flags by the app).
func TestPredictRunWithoutCheckpoint(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "fresh")
	if _, err := runs.Create(dir, runs.Config{Network: "vgg8", InputSize: 150, Classes: []string{"a", "b"}, Std: [3]float32{1, 1, 1}}); err != nil {
		t.Fatal(err)
	}
	_, stderr, code := run(t, "predict", dir, dir)
	if want := "): train it first, e.g. kfash-tf train --resume " + dir + "\n"; code == 0 ||
		!strings.Contains(stderr, "kfash-tf: run "+dir+" has no checkpoint to serve (") || !strings.Contains(stderr, want) {
		t.Errorf("exit %d, stderr %q; want the advice to train %s", code, stderr, dir)
	}
}
