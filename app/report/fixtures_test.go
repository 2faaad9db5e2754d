package report

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/kfash-tf/kfash-tf/graphs/runs"
)

// epoch is one synthetic metrics.jsonl row: the numbers that matter to the
// report, the "best" flag as the training loop would have written it.
type epoch struct {
	trainAcc, valAcc, valLoss float64
	best                      bool
	confusion                 [][]int64
}

// fixture is a synthetic run folder.
type fixture struct {
	name    string
	cfg     *runs.Config // nil: no config.json
	rawCfg  string       // written as config.json instead of cfg when set
	epochs  []epoch
	garbage map[int]string // extra metrics.jsonl lines, inserted before row i (0-based)
	status  *runs.Status
}

var testClasses = []string{"resort", "retro", "sporty"}

// testConfig is a run config like train writes, for network and rule.
func testConfig(network, rule string, epochs int) *runs.Config {
	return &runs.Config{Network: network, InputSize: 150, Classes: testClasses, Data: "photos/",
		Normalize: "none", Std: [3]float32{1, 1, 1}, Augment: "double", Epochs: epochs, BatchSize: 64,
		Optimizer: runs.OptimizerConfig{Name: runs.OptimizerAdam, WeightDecay: 1e-4},
		Schedule:  runs.Schedule{Kind: "constant", Base: 1e-4, Epochs: epochs}, Dropout: 0.4, Seed: 7,
		Select: rule, Created: time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)}
}

// write creates the fixture's folder under root and returns it.
func (f fixture) write(t *testing.T, root string) string {
	t.Helper()
	dir := filepath.Join(root, filepath.FromSlash(f.name))
	run := runs.Run{Dir: dir}
	switch {
	case f.rawCfg != "":
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(f.rawCfg), 0o644); err != nil {
			t.Fatal(err)
		}
	case f.cfg != nil:
		var err error
		if run, err = runs.Create(dir, *f.cfg); err != nil {
			t.Fatal(err)
		}
	default:
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for i, e := range f.epochs {
		if g, ok := f.garbage[i]; ok {
			appendLine(t, filepath.Join(dir, "metrics.jsonl"), g)
		}
		row := runs.EpochResult{Epoch: i + 1, Step: int64(10 * (i + 1)), LR: 1e-4, TrainLoss: 1 / float64(i+2),
			TrainAcc: e.trainAcc, ValLoss: e.valLoss, ValAcc: e.valAcc, ValMacroF1: e.valAcc - 0.05,
			Seconds: 12, ImagesPerSec: 100, Best: e.best, ValConfusion: e.confusion}
		if err := run.AppendMetrics(row); err != nil {
			t.Fatal(err)
		}
	}
	if g, ok := f.garbage[len(f.epochs)]; ok {
		appendLine(t, filepath.Join(dir, "metrics.jsonl"), g)
	}
	if f.status != nil {
		if err := run.WriteStatus(*f.status); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func appendLine(t *testing.T, path, line string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(line + "\n"); err != nil {
		t.Fatal(err)
	}
}

// conf is a 3-class validation confusion matrix with d correct per class
// and the rest of 10 examples per class predicted as the next class.
func conf(d int64) [][]int64 {
	return [][]int64{{d, 10 - d, 0}, {0, d, 10 - d}, {10 - d, 0, d}}
}

func finished(epochs int) *runs.Status {
	return &runs.Status{State: runs.StateFinished, EpochsDone: epochs, Epochs: epochs}
}

// fakeNetworks stands in for the models registry: fast, and the numbers
// are known.
func fakeNetworks(cfg runs.Config) (NetInfo, error) {
	return NetInfo{Params: int64(1000 * len(cfg.Network)), HasDropout: cfg.Network == "alexnet"}, nil
}

// studyFixtures is a set of runs covering the table's cases: a tie inside a
// run, a val_loss rule, a tie between runs decided by validation loss, and
// failed, running, corrupt, empty and half-written runs.
func studyFixtures() []fixture {
	return []fixture{
		// val_acc with a tie at 0.70 (epochs 2 and 3): the first, epoch 2, is selected.
		{name: "a-tie", cfg: testConfig("alexnet", runs.SelectValAcc, 4), status: finished(4), epochs: []epoch{
			{0.55, 0.50, 0.90, true, conf(5)}, {0.75, 0.70, 0.80, true, conf(7)},
			{0.85, 0.70, 0.70, false, conf(7)}, {0.95, 0.60, 0.95, false, conf(6)}}},
		// val_loss: epoch 2 has the lowest loss although epoch 3 has the highest accuracy.
		{name: "b-loss", cfg: testConfig("vgg8", runs.SelectValLoss, 3), status: finished(3), epochs: []epoch{
			{0.50, 0.60, 0.90, true, conf(6)}, {0.70, 0.65, 0.50, true, conf(6)}, {0.90, 0.72, 0.60, false, conf(7)}}},
		// Ties a-tie's 0.70 at its selected epoch with a lower loss: the best run.
		{name: "c-best", cfg: testConfig("googlenet", runs.SelectValAcc, 2), status: finished(2), epochs: []epoch{
			{0.60, 0.70, 0.60, true, conf(7)}, {0.80, 0.65, 0.70, false, conf(6)}}},
		// Failed after one epoch: shown with its error, its one epoch still drawn.
		{name: "d-failed", cfg: testConfig("vgg10", runs.SelectValAcc, 5), epochs: []epoch{{0.40, 0.45, 1.10, true, conf(4)}},
			status: &runs.Status{State: runs.StateFailed, EpochsDone: 1, Epochs: 5, Error: "non-finite loss NaN at step 12"}},
		// Still running: 2 of 10 epochs, the second row's val acc a NaN written as -1.
		{name: "e-running", cfg: testConfig("resnet34", runs.SelectValAcc, 10), epochs: []epoch{{0.40, 0.50, 1.0, true, conf(5)}, {0.50, -1, -1, false, nil}},
			status: &runs.Status{State: runs.StateRunning, EpochsDone: 0, Epochs: 10}},
		// config.json unreadable: corrupt, never the best even with the highest accuracy.
		{name: "f-corrupt", rawCfg: `{"network": "alexnet", "epochs": `, epochs: []epoch{{0.99, 0.99, 0.01, true, nil}}},
		// Garbage lines in metrics.jsonl around good rows; no status.json (older kfash-tf).
		{name: "g-garbage", cfg: testConfig("densenet", runs.SelectValAcc, 3),
			garbage: map[int]string{1: `{"epoch": 2, "val_acc": 0.`, 2: "not json at all"},
			epochs:  []epoch{{0.50, 0.55, 0.80, true, nil}, {0.60, 0.58, 0.75, true, nil}}},
		// A config and nothing else yet.
		{name: "h-empty", cfg: testConfig("vgg8", runs.SelectValAcc, 100),
			status: &runs.Status{State: runs.StateRunning, Epochs: 100}},
		// Flags that disagree with the rule (edited or buggy): the rule wins, the problem is told.
		{name: "i-flags", cfg: testConfig("vgg8", runs.SelectValAcc, 2), status: finished(2), epochs: []epoch{
			{0.50, 0.60, 0.70, true, conf(6)}, {0.60, 0.55, 0.60, true, conf(5)}}},
	}
}

// writeStudy writes studyFixtures under a fresh folder and returns it.
func writeStudy(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	for _, f := range studyFixtures() {
		f.write(t, root)
	}
	return root
}
