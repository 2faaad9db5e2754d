package graphs

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/kfash-tf/kfash-tf/augment"
)

// Selection rules for the "best" checkpoint.
const (
	SelectValAcc  = "val_acc"  // the study's rule: the first epoch with the highest validation accuracy
	SelectValLoss = "val_loss" // the lowest validation loss
)

// LoopConfig configures Fit.
type LoopConfig struct {
	Epochs   int      // total epochs of the run (a resumed run continues up to it)
	Patience int      // stop after this many epochs without a better selection metric; 0: never
	Select   string   // SelectValAcc or SelectValLoss
	Schedule Schedule // learning rate per step
	Resume   *LoopState
}

// LoopState is where a run stands: what a checkpoint records besides the
// variables, so that a resumed run continues exactly.
type LoopState struct {
	Epoch     int     `json:"epoch"`      // epochs completed
	Step      int64   `json:"step"`       // optimisation steps completed
	BestEpoch int     `json:"best_epoch"` // 1-based epoch of the best checkpoint; 0: none yet
	Best      float64 `json:"best"`       // its selection metric
	SinceBest int     `json:"since_best"` // epochs since the best one (early stopping)
	// A run interrupted inside an epoch records how far it got, so that the
	// resumed run skips those batches and the epoch's figures still add up.
	BatchesDone int     `json:"batches_done"`
	LossSum     float64 `json:"loss_sum"` // Σ batch-mean loss × batch size, this epoch so far
	Correct     int64   `json:"correct"`
	Seen        int64   `json:"seen"`
}

// EpochResult is one row of metrics.csv.
type EpochResult struct {
	Epoch        int     `json:"epoch"`
	Step         int64   `json:"step"`
	LR           float64 `json:"lr"`
	TrainLoss    float64 `json:"train_loss"`
	TrainAcc     float64 `json:"train_acc"`
	ValLoss      float64 `json:"val_loss"`
	ValAcc       float64 `json:"val_acc"`
	ValMacroF1   float64 `json:"val_macro_f1"`
	Seconds      float64 `json:"epoch_seconds"`
	ImagesPerSec float64 `json:"images_per_sec"`
	Skipped      int     `json:"skipped_files"`
	Best         bool    `json:"best"`
	// ValConfusion is the validation confusion matrix (rows: true class,
	// columns: predicted), kept so that a report can draw any epoch's
	// matrix and per-class table without evaluating again.
	ValConfusion [][]int64 `json:"val_confusion,omitempty"`
}

// StepInfo is reported after every training step.
type StepInfo struct {
	Epoch, Batch, Batches int
	Step                  int64
	Loss                  float64
	Images                int64 // images trained on this epoch so far
	Elapsed               time.Duration
}

// Hooks are called by Fit; an error from a hook stops the run.
type Hooks struct {
	OnStep func(StepInfo)
	// OnEpoch gets the epoch's metrics and the state after it (with
	// r.Best set when it is the new best); it writes metrics and checkpoints.
	OnEpoch func(r EpochResult, st LoopState) error
	// OnInterrupt gets the state of an epoch interrupted by ctx; it writes
	// the "last" checkpoint.
	OnInterrupt func(st LoopState) error
}

// ErrNonFinite is returned (wrapped) when the training loss becomes NaN or infinite.
var ErrNonFinite = errors.New("non-finite loss")

// Fit trains t on train, validating on val after every epoch, until
// cfg.Epochs or early stopping, and returns the final state. A cancelled ctx
// stops it inside an epoch: OnInterrupt is called and ctx's error returned.
func (t *Trainer) Fit(ctx context.Context, train, val *augment.Loader, classes int, cfg LoopConfig, hooks Hooks) (LoopState, error) {
	if cfg.Select != SelectValAcc && cfg.Select != SelectValLoss {
		return LoopState{}, fmt.Errorf("unknown selection rule %q: use %s or %s", cfg.Select, SelectValAcc, SelectValLoss)
	}
	st := LoopState{}
	if cfg.Resume != nil {
		st = *cfg.Resume
	}
	for st.Epoch < cfg.Epochs {
		if cfg.Patience > 0 && st.SinceBest >= cfg.Patience {
			break
		}
		epoch := st.Epoch + 1
		start := time.Now()
		batch := 0
		var err error
		ectx, cancel := context.WithCancel(ctx)
		for b := range train.Epoch(ectx, epoch) {
			batch++
			if batch <= st.BatchesDone { // already trained before an interruption
				b.Release()
				continue
			}
			lr := cfg.Schedule.At(st.Step)
			loss, correct, stepErr := t.TrainBatch(b, lr, st.Step)
			n := b.N
			b.Release()
			if stepErr == nil && !finite(loss) {
				stepErr = fmt.Errorf("%w %v at step %d (epoch %d, batch %d): the last good checkpoint is kept; try a lower --lr", ErrNonFinite, loss, st.Step+1, epoch, batch)
			}
			if stepErr != nil {
				err = stepErr
				break
			}
			st.Step++
			st.BatchesDone = batch
			st.LossSum += loss * float64(n)
			st.Correct += int64(correct)
			st.Seen += int64(n)
			if hooks.OnStep != nil {
				hooks.OnStep(StepInfo{Epoch: epoch, Batch: batch, Batches: train.Steps(), Step: st.Step, Loss: loss, Images: st.Seen, Elapsed: time.Since(start)})
			}
		}
		cancel()
		if err != nil {
			return st, err
		}
		if ctx.Err() != nil {
			if hooks.OnInterrupt != nil {
				if herr := hooks.OnInterrupt(st); herr != nil {
					return st, fmt.Errorf("saving the interrupted run: %w", herr)
				}
			}
			return st, ctx.Err()
		}
		trainSecs := time.Since(start).Seconds()
		ev, err := t.Evaluate(ctx, val, classes, nil)
		if err != nil {
			if ctx.Err() != nil && hooks.OnInterrupt != nil {
				if herr := hooks.OnInterrupt(st); herr != nil {
					return st, herr
				}
			}
			return st, err
		}
		r := EpochResult{
			Epoch: epoch, Step: st.Step, LR: cfg.Schedule.At(st.Step - 1),
			TrainLoss: ratioF(st.LossSum, float64(st.Seen)), TrainAcc: ratioF(float64(st.Correct), float64(st.Seen)),
			ValLoss: ev.Loss, ValAcc: ev.Accuracy(), ValMacroF1: ev.Confusion.MacroF1(), ValConfusion: ev.Confusion.Counts,
			Seconds: time.Since(start).Seconds(), ImagesPerSec: float64(st.Seen) / trainSecs,
			Skipped: len(train.Skipped()) + ev.Skipped,
		}
		metric := r.ValAcc
		if cfg.Select == SelectValLoss {
			metric = r.ValLoss
		}
		if st.BestEpoch == 0 || better(cfg.Select, metric, st.Best) {
			st.BestEpoch, st.Best, st.SinceBest, r.Best = epoch, metric, 0, true
		} else {
			st.SinceBest++
		}
		st.Epoch = epoch
		st.BatchesDone, st.LossSum, st.Correct, st.Seen = 0, 0, 0, 0
		if hooks.OnEpoch != nil {
			if err := hooks.OnEpoch(r, st); err != nil {
				return st, err
			}
		}
	}
	return st, nil
}

// better reports whether metric improves strictly on best: a tie keeps the
// first epoch, as the study's rule does.
func better(rule string, metric, best float64) bool {
	if math.IsNaN(metric) {
		return false
	}
	if rule == SelectValLoss {
		return metric < best
	}
	return metric > best
}

func ratioF(a, b float64) float64 {
	if b == 0 {
		return math.NaN()
	}
	return a / b
}
