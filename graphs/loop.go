package graphs

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/kfash-tf/kfash-tf/augment"
	"github.com/kfash-tf/kfash-tf/graphs/runs"
)

// LoopConfig configures Fit.
type LoopConfig struct {
	Epochs   int           // total epochs of the run (a resumed run continues up to it)
	Patience int           // stop after this many epochs without a better selection metric; 0: never
	Select   string        // runs.SelectValAcc or runs.SelectValLoss
	Schedule runs.Schedule // learning rate per step
	Resume   *runs.LoopState
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
	OnEpoch func(r runs.EpochResult, st runs.LoopState) error
	// OnInterrupt gets the state of an epoch interrupted by ctx; it writes
	// the "last" checkpoint.
	OnInterrupt func(st runs.LoopState) error
}

// Batches is a data set as Fit and Evaluate read it: a channel of batches
// per epoch. *augment.Loader is one; a test may use a slice in memory.
type Batches interface {
	// Epoch returns the batches of epoch number epoch (1-based for
	// training; Evaluate asks for epoch 0), closing the channel at the end
	// of the epoch or when ctx is done. The reader releases each batch.
	Epoch(ctx context.Context, epoch int) <-chan *augment.Batch
	// Steps is the number of batches of an epoch, for progress reports.
	Steps() int
	// Skipped lists the files left out so far (unreadable images).
	Skipped() []augment.SkipReport
}

// ErrNonFinite is the sentinel of a NonFiniteError: errors.Is(err,
// ErrNonFinite) reports a diverged run.
var ErrNonFinite = errors.New("non-finite loss")

// NonFiniteError is returned by Fit when the training loss becomes NaN or
// infinite; the state Fit returns with it is that after the last good step.
type NonFiniteError struct {
	Loss  float64 // the loss of the step: NaN or ±Inf
	Step  int64   // global step, 1-based
	Epoch int
	Batch int // 1-based, within the epoch
}

// Error says where the loss diverged.
func (e *NonFiniteError) Error() string {
	return fmt.Sprintf("%v %v at step %d (epoch %d, batch %d)", ErrNonFinite, e.Loss, e.Step, e.Epoch, e.Batch)
}

// Unwrap returns ErrNonFinite.
func (e *NonFiniteError) Unwrap() error { return ErrNonFinite }

// Fit trains t on train, validating on val after every epoch, until
// cfg.Epochs or early stopping, and returns the final state. A cancelled ctx
// stops it inside an epoch: OnInterrupt is called and ctx's error returned.
//
// On a replica (NewReplicaTrainer) every step and every end of epoch is a
// collective that every task must reach, so a cancelled ctx does not stop
// the task at once: the step in progress asks every task to stop after it
// (or, between steps, the end of the epoch does), and all of them stop
// there together; a task stopped by another returns ErrClusterStopped. The
// step figures (loss, accuracy, images) and the validation are those of all
// the tasks together, the same on every task.
func (t *Trainer) Fit(ctx context.Context, train, val Batches, classes int, cfg LoopConfig, hooks Hooks) (runs.LoopState, error) {
	if cfg.Select != runs.SelectValAcc && cfg.Select != runs.SelectValLoss {
		return runs.LoopState{}, fmt.Errorf("unknown selection rule %q: use %s or %s", cfg.Select, runs.SelectValAcc, runs.SelectValLoss)
	}
	st := runs.LoopState{}
	if cfg.Resume != nil {
		st = *cfg.Resume
	}
	replica := t.TG.sync != nil
	loaderCtx := ctx
	if replica {
		loaderCtx = context.WithoutCancel(ctx) // the loop decides when to stop
	}
	// stopped returns the error of a run stopped by ctx, or by another task.
	stopped := func() error {
		if err := ctx.Err(); err != nil {
			return err
		}
		return ErrClusterStopped
	}
	for st.Epoch < cfg.Epochs {
		if cfg.Patience > 0 && st.SinceBest >= cfg.Patience {
			break
		}
		epoch := st.Epoch + 1
		start := time.Now()
		batch := 0
		var err error
		stopAll := false
		ectx, cancel := context.WithCancel(loaderCtx)
		for b := range train.Epoch(ectx, epoch) {
			batch++
			if batch <= st.BatchesDone { // already trained before an interruption
				b.Release()
				continue
			}
			lr := cfg.Schedule.At(st.Step)
			res, stepErr := t.step(b, lr, st.Step, replica && ctx.Err() != nil)
			b.Release()
			if stepErr == nil && !finite(res.loss) {
				stepErr = &NonFiniteError{Loss: res.loss, Step: st.Step + 1, Epoch: epoch, Batch: batch}
			}
			if stepErr != nil {
				err = stepErr
				break
			}
			st.Step++
			st.BatchesDone = batch
			st.LossSum += res.loss * float64(res.images)
			st.Correct += res.correct
			st.Seen += res.images
			if hooks.OnStep != nil {
				hooks.OnStep(StepInfo{Epoch: epoch, Batch: batch, Batches: train.Steps(), Step: st.Step, Loss: res.loss, Images: st.Seen, Elapsed: time.Since(start)})
			}
			if res.stop {
				stopAll = true
				break
			}
		}
		cancel()
		if err != nil {
			return st, err
		}
		if stopAll || (!replica && ctx.Err() != nil) {
			if hooks.OnInterrupt != nil {
				if herr := hooks.OnInterrupt(st); herr != nil {
					return st, fmt.Errorf("saving the interrupted run: %w", herr)
				}
			}
			return st, stopped()
		}
		trainSecs := time.Since(start).Seconds()
		trainSkipped := len(train.Skipped())
		var ev EvalResult
		if replica {
			ev, trainSkipped, stopAll, err = t.syncEpochEnd(ctx, val, classes, trainSkipped, ctx.Err() != nil)
		} else {
			ev, err = t.Evaluate(ctx, val, classes, nil)
		}
		if err != nil {
			if !replica && ctx.Err() != nil && hooks.OnInterrupt != nil {
				if herr := hooks.OnInterrupt(st); herr != nil {
					return st, herr
				}
			}
			return st, err
		}
		r := runs.EpochResult{
			Epoch: epoch, Step: st.Step, LR: cfg.Schedule.At(st.Step - 1),
			TrainLoss: ratioF(st.LossSum, float64(st.Seen)), TrainAcc: ratioF(float64(st.Correct), float64(st.Seen)),
			ValLoss: ev.Loss, ValAcc: ev.Accuracy(), ValMacroF1: ev.Confusion.MacroF1(), ValConfusion: ev.Confusion.Counts,
			Seconds: time.Since(start).Seconds(), ImagesPerSec: float64(st.Seen) / trainSecs,
			Skipped: trainSkipped + ev.Skipped,
		}
		metric := r.ValAcc
		if cfg.Select == runs.SelectValLoss {
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
		if stopAll {
			// Asked between the last step and the sum: the epoch is
			// complete and saved.
			return st, stopped()
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
	if rule == runs.SelectValLoss {
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

// finite reports whether v is neither NaN nor infinite.
func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
