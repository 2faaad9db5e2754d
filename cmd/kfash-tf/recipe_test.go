package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// config.json records the resolved recipe: its name and every value it set,
// whether it came from the defaults, the recipe or a flag; --help lists the
// recipes and the initialisation schemes.
func TestTrainRecordsResolvedRecipe(t *testing.T) {
	help := mustRun(t, "train", "--help")
	for _, want := range []string{"default (", "seed (", "--init", "torch", "glorot", "he"} {
		if !strings.Contains(help, want) {
			t.Errorf("train --help lacks %q", want)
		}
	}
	data := tinyDataset(t, 4, 2)
	defaults := filepath.Join(t.TempDir(), "defaults")
	mustRun(t, "train", "vgg8", "--data", data, "--epochs", "1", "--batch-size", "4", "--out", defaults)
	cfg := readConfig(t, defaults)
	if cfg.Recipe != "default" || cfg.Init != "glorot" || cfg.LabelSmoothing != 0.1 || cfg.Optimizer.Name != "adamw" {
		t.Errorf("defaults recorded as recipe %q, init %q, label smoothing %v, optimizer %+v", cfg.Recipe, cfg.Init, cfg.LabelSmoothing, cfg.Optimizer)
	}

	seed := filepath.Join(t.TempDir(), "seed")
	mustRun(t, "train", "vgg8", "--data", data, "--recipe", "seed", "--epochs", "1", "--batch-size", "4", "--out", seed)
	cfg = readConfig(t, seed)
	// The study's vgg8: AdamW at 1e-4 without decay, doubling, PyTorch's
	// initialisation; --epochs and --batch-size given override the recipe.
	if cfg.Recipe != "seed" || cfg.Init != "torch" || cfg.Augment != "double" || cfg.Normalize != "none" || cfg.LabelSmoothing != 0 ||
		cfg.Optimizer.Name != "adamw" || cfg.Optimizer.WeightDecay != 0 || cfg.Schedule.Base != 1e-4 || cfg.Schedule.Kind != "constant" ||
		cfg.Epochs != 1 || cfg.BatchSize != 4 {
		t.Errorf("--recipe seed recorded %+v", cfg)
	}

	_, stderr, code := run(t, "train", "vgg8", "--data", data, "--init", "xavier", "--out", filepath.Join(t.TempDir(), "bad"))
	if code == 0 || !strings.Contains(stderr, "--init") || !strings.Contains(stderr, "xavier") {
		t.Errorf("--init xavier: exit %d\n%s", code, stderr)
	}
}
