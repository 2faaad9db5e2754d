package graphs

import (
	"context"
	"errors"
	"math"
	"math/rand"
	"strings"
	"testing"

	"github.com/kfash-tf/kfash-tf/augment"
	"github.com/kfash-tf/kfash-tf/graphs/runs"
)

// memBatches is a data set in memory: the same batches every epoch.
type memBatches struct {
	batches []*augment.Batch
	skipped []augment.SkipReport
}

// newMemBatches makes n batches of size images of 3 classes, with random
// pixels: enough for the loop's bookkeeping, not to learn anything.
func newMemBatches(n, batch, size int, seed int64) *memBatches {
	rng := rand.New(rand.NewSource(seed))
	m := &memBatches{skipped: []augment.SkipReport{{Path: "broken.jpg", Err: errors.New("not an image")}}}
	for i := 0; i < n; i++ {
		b := &augment.Batch{Images: make([]float32, batch*size*size*3), Labels: make([]int32, batch), Paths: make([]string, batch), N: batch}
		for j := range b.Images {
			b.Images[j] = float32(rng.Intn(256))
		}
		for j := range b.Labels {
			b.Labels[j] = int32(rng.Intn(3))
		}
		m.batches = append(m.batches, b)
	}
	return m
}

func (m *memBatches) Epoch(ctx context.Context, epoch int) <-chan *augment.Batch {
	ch := make(chan *augment.Batch)
	go func() {
		defer close(ch)
		for _, b := range m.batches {
			// A copy: the loop releases what it reads.
			c := *b
			select {
			case ch <- &c:
			case <-ctx.Done():
				return
			}
		}
	}()
	return ch
}

func (m *memBatches) Steps() int                    { return len(m.batches) }
func (m *memBatches) Skipped() []augment.SkipReport { return m.skipped }

var _ Batches = (*augment.Loader)(nil)

// Fit drives its hooks from any Batches: steps, epochs, the best epoch and
// the skipped files of both data sets.
func TestFitOnBatchesInMemory(t *testing.T) {
	tr, spec := newTestTrainer(t, "vgg8", runs.OptimizerConfig{Name: runs.OptimizerAdam}, 1)
	train, val := newMemBatches(3, 4, spec.InputSize, 1), newMemBatches(1, 5, spec.InputSize, 2)
	var steps []StepInfo
	var epochs []runs.EpochResult
	hooks := Hooks{
		OnStep:  func(s StepInfo) { steps = append(steps, s) },
		OnEpoch: func(r runs.EpochResult, st runs.LoopState) error { epochs = append(epochs, r); return nil },
	}
	cfg := LoopConfig{Epochs: 2, Select: runs.SelectValAcc, Schedule: runs.Schedule{Kind: "constant", Base: 1e-4}}
	st, err := tr.Fit(context.Background(), train, val, 3, cfg, hooks)
	if err != nil {
		t.Fatal(err)
	}
	if st.Epoch != 2 || st.Step != 6 || st.BestEpoch < 1 {
		t.Errorf("state %+v, want epoch 2, step 6, a best epoch", st)
	}
	if len(steps) != 6 || steps[5].Epoch != 2 || steps[5].Batch != 3 || steps[5].Batches != 3 || steps[5].Images != 12 {
		t.Errorf("steps %+v", steps)
	}
	if len(epochs) != 2 || !epochs[0].Best || epochs[1].Step != 6 {
		t.Fatalf("epochs %+v", epochs)
	}
	for _, r := range epochs {
		if r.Skipped != 2 { // one skipped file in each data set
			t.Errorf("epoch %d: %d skipped, want 2", r.Epoch, r.Skipped)
		}
		if math.IsNaN(r.TrainLoss) || math.IsNaN(r.ValLoss) || r.ValAcc < 0 || r.ValAcc > 1 {
			t.Errorf("epoch %d: metrics %+v", r.Epoch, r)
		}
	}
}

// A diverging run stops with a *NonFiniteError at the step that diverged,
// in neutral terms: the command words the advice in its flags.
func TestFitStopsOnNonFiniteLoss(t *testing.T) {
	tr, spec := newTestTrainer(t, "vgg8", runs.OptimizerConfig{Name: runs.OptimizerAdam}, 1)
	train, val := newMemBatches(4, 4, spec.InputSize, 1), newMemBatches(1, 4, spec.InputSize, 2)
	epochs := 0
	hooks := Hooks{OnEpoch: func(runs.EpochResult, runs.LoopState) error { epochs++; return nil }}
	cfg := LoopConfig{Epochs: 3, Select: runs.SelectValAcc, Schedule: runs.Schedule{Kind: "constant", Base: 1e30}}
	st, err := tr.Fit(context.Background(), train, val, 3, cfg, hooks)
	var nf *NonFiniteError
	if !errors.As(err, &nf) || !errors.Is(err, ErrNonFinite) {
		t.Fatalf("error %v (%T), want a *NonFiniteError", err, err)
	}
	if finite(nf.Loss) || nf.Step != st.Step+1 || nf.Epoch != st.Epoch+1 || nf.Batch != st.BatchesDone+1 || epochs != st.Epoch {
		t.Errorf("error %+v with state %+v after %d epochs", nf, st, epochs)
	}
	if !strings.HasPrefix(err.Error(), "non-finite loss ") || strings.Contains(err.Error(), "--") {
		t.Errorf("message %q: want neutral wording, no flags", err)
	}
}
