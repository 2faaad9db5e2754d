package graphs

import (
	"context"
	"testing"

	"github.com/kfash-tf/kfash-tf/augment"
	"github.com/kfash-tf/kfash-tf/augment/augmenttest"
	"github.com/kfash-tf/kfash-tf/graphs/runs"
	"github.com/kfash-tf/kfash-tf/models"
)

// tinyData writes a 3-class generated dataset and returns its samples.
func tinyData(t *testing.T, train, val int) (trainS, valS []augment.Sample) {
	t.Helper()
	dir := t.TempDir()
	if err := augmenttest.Write(dir, augmenttest.Spec{Classes: []string{"a", "b", "c"},
		PerClass: map[string]int{"Train": train, "Validation": val}, Size: 48, Seed: 3}); err != nil {
		t.Fatal(err)
	}
	ds, err := augment.Open(dir, augment.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	trainS, _ = ds.Split(augment.SplitTrain)
	valS, _ = ds.Split(augment.SplitValidation)
	return trainS, valS
}

func newTestTrainer(t *testing.T, network string, opt runs.OptimizerConfig, seed int64) (*Trainer, models.Spec) {
	t.Helper()
	spec, err := models.Get(network)
	if err != nil {
		t.Fatal(err)
	}
	mean, std := augment.NormalizeImageNet.MeanStd()
	tg, err := BuildTrainGraph(ModelConfig{Network: spec, Net: spec.Config(3), Mean: mean, Std: std, Seed: seed, Optimizer: opt})
	if err != nil {
		t.Fatal(err)
	}
	tr, err := NewTrainer(tg, spec.InputSize, runs.SessionConfig{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	if err := tr.Initialize(); err != nil {
		t.Fatal(err)
	}
	return tr, spec
}

// A network drives 30 generated images of 3 classes to 100% training
// accuracy within a few dozen steps: the whole training path (gradients,
// optimizer, feeding) works.
func TestOverfitsThirtyImages(t *testing.T) {
	trainS, _ := tinyData(t, 10, 1)
	tr, spec := newTestTrainer(t, "vgg8", runs.OptimizerConfig{Name: runs.OptimizerAdam}, 1)
	loader, err := augment.NewLoader(trainS, augment.LoaderConfig{Size: spec.InputSize, BatchSize: 10, Shuffle: true, Seed: 1, Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	evalLoader, _ := augment.NewLoader(trainS, augment.LoaderConfig{Size: spec.InputSize, BatchSize: 15, Workers: 2})
	ctx := context.Background()
	step := int64(0)
	for epoch := 1; epoch <= 16; epoch++ {
		for b := range loader.Epoch(ctx, epoch) {
			if _, _, err := tr.TrainBatch(b, 3e-4, step); err != nil {
				t.Fatal(err)
			}
			step++
			b.Release()
		}
		res, err := tr.Evaluate(ctx, evalLoader, 3, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("epoch %d eval acc %.3f loss %.4f", epoch, res.Accuracy(), res.Loss)
		if res.Accuracy() == 1 {
			t.Logf("100%% training accuracy after %d steps (loss %.4f)", step, res.Loss)
			return
		}
	}
	t.Fatalf("training accuracy below 100%% after %d steps", step)
}
