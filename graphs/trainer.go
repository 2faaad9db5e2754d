package graphs

import (
	"context"
	"errors"
	"fmt"
	"math"

	tf "github.com/galeone/tensorflow/tensorflow/go"
	"github.com/galeone/tensorflow/tensorflow/go/op"

	"github.com/kfash-tf/kfash-tf/augment"
	"github.com/kfash-tf/kfash-tf/graphs/runs"
	"github.com/kfash-tf/kfash-tf/tfops"
)

// Trainer runs a TrainGraph in a session: it is where a training step and
// an evaluation batch are executed.
type Trainer struct {
	TG      *TrainGraph
	Sess    *tf.Session
	size    int64
	replica *Replica // the task's place in a cluster (NewReplicaTrainer); nil for one process
}

// NewTrainer opens a session on tg, a one-process graph (see
// NewReplicaTrainer for a cluster's).
func NewTrainer(tg *TrainGraph, inputSize int, sc runs.SessionConfig) (*Trainer, error) {
	if tg.sync != nil {
		return nil, errors.New("a graph built with ModelConfig.Sync needs NewReplicaTrainer")
	}
	sess, err := NewSession(tg.Graph, sc)
	if err != nil {
		return nil, err
	}
	return &Trainer{TG: tg, Sess: sess, size: int64(inputSize)}, nil
}

// Close releases the session.
func (t *Trainer) Close() error { return t.Sess.Close() }

// Initialize gives every variable its initial value (weights from the seed,
// optimizer slots zero).
func (t *Trainer) Initialize() error {
	if _, err := t.Sess.Run(nil, nil, t.TG.Store.InitOps()); err != nil {
		return fmt.Errorf("initialising variables: %w", err)
	}
	return nil
}

// VariableValues returns the current value of every variable of the
// store, by name (a test hook's dump; checkpoints go through the Saver).
// It adds read ops to the graph at each call: call it once, at the end.
func (t *Trainer) VariableValues() (map[string][]float32, error) {
	vars := t.TG.Store.Variables()
	root := op.NewScopeWithGraph(t.TG.Graph).SubScope("variable_values")
	reads := make([]tf.Output, len(vars))
	for i, v := range vars {
		reads[i] = op.ReadVariableOp(root.SubScope("read"), v.Handle, tf.Float)
	}
	if err := root.Err(); err != nil {
		return nil, err
	}
	out, err := t.Sess.Run(nil, reads, nil)
	if err != nil {
		return nil, fmt.Errorf("reading the variables: %w", err)
	}
	vals := make(map[string][]float32, len(vars))
	for i, v := range vars {
		flat, err := tfops.Float32s(out[i])
		if err != nil {
			return nil, fmt.Errorf("variable %s: %w", v.Name, err)
		}
		vals[v.Name] = flat
	}
	return vals, nil
}

// feeds converts a batch into input tensors: one copy of the pixels into
// TensorFlow's memory, no reflection.
func (t *Trainer) feeds(b *augment.Batch) (map[tf.Output]*tf.Tensor, error) {
	n := int64(b.N)
	images, err := tfops.Float32Tensor(b.Images[:n*t.size*t.size*3], []int64{n, t.size, t.size, 3})
	if err != nil {
		return nil, err
	}
	labels, err := tf.NewTensor(b.Labels[:n])
	if err != nil {
		return nil, err
	}
	return map[tf.Output]*tf.Tensor{t.TG.Images: images, t.TG.Labels: labels}, nil
}

// TrainBatch runs one optimisation step at learning rate lr as global step
// `step` (which seeds the dropout masks) and returns the batch's mean loss
// and number of correct predictions.
func (t *Trainer) TrainBatch(b *augment.Batch, lr float64, step int64) (loss float64, correct int, err error) {
	feeds, err := t.feeds(b)
	if err != nil {
		return 0, 0, err
	}
	lrT, _ := tf.NewTensor(float32(lr))
	stepT, _ := tf.NewTensor(step)
	feeds[t.TG.LR], feeds[t.TG.RNGStep] = lrT, stepT
	out, err := t.Sess.Run(feeds, []tf.Output{t.TG.Loss, t.TG.Correct}, []*tf.Operation{t.TG.Step})
	freeFeeds(feeds)
	if err != nil {
		return 0, 0, fmt.Errorf("training step %d: %w", step, err)
	}
	loss, correct = float64(out[0].Value().(float32)), int(out[1].Value().(int32))
	tfops.Free(out...)
	return loss, correct, nil
}

// freeFeeds releases the fed tensors once Session.Run has returned, instead
// of leaving a batch's worth of TensorFlow memory per step to the garbage
// collector (see tfops.Free).
func freeFeeds(feeds map[tf.Output]*tf.Tensor) {
	for _, t := range feeds {
		tfops.Free(t)
	}
}

// EvalResult summarises a pass of the inference path over a data set.
type EvalResult struct {
	Loss      float64 // mean cross-entropy per example
	Confusion *runs.Confusion
	Examples  int
	Skipped   int
	lossSum   float64 // Σ loss, added up over the tasks of a cluster
}

// Accuracy is the fraction of correctly classified examples.
func (r EvalResult) Accuracy() float64 { return r.Confusion.Accuracy() }

// Prediction is the inference result for one example.
type Prediction struct {
	Path  string
	Label int
	Probs []float32
	Loss  float64
}

// Evaluate runs the inference path over one pass of data (its epoch 0).
// each, if not nil, receives every example's prediction.
func (t *Trainer) Evaluate(ctx context.Context, data Batches, classes int, each func(Prediction)) (EvalResult, error) {
	res := EvalResult{Confusion: runs.NewConfusion(classes)}
	sum := 0.0
	// Leaving the range early must stop the producer (a Loader's workers).
	ectx, cancel := context.WithCancel(ctx)
	defer cancel()
	for b := range data.Epoch(ectx, 0) {
		feeds, err := t.feeds(b)
		if err != nil {
			b.Release()
			return res, err
		}
		out, err := t.Sess.Run(feeds, []tf.Output{t.TG.ExampleLoss, t.TG.Probs}, nil)
		freeFeeds(feeds)
		if err != nil {
			b.Release()
			return res, fmt.Errorf("evaluating: %w", err)
		}
		losses := out[0].Value().([]float32)
		probs, _ := tfops.Float32s(out[1])
		tfops.Free(out...)
		for i := 0; i < b.N; i++ {
			p := probs[i*classes : (i+1)*classes]
			res.Confusion.Add(int(b.Labels[i]), Argmax(p))
			sum += float64(losses[i])
			if each != nil {
				each(Prediction{Path: b.Paths[i], Label: int(b.Labels[i]), Probs: append([]float32(nil), p...), Loss: float64(losses[i])})
			}
		}
		res.Examples += b.N
		b.Release()
	}
	if err := ctx.Err(); err != nil {
		return res, err
	}
	res.lossSum = sum
	if res.Examples > 0 {
		res.Loss = sum / float64(res.Examples)
	} else {
		res.Loss = math.NaN()
	}
	res.Skipped = len(data.Skipped())
	return res, nil
}

// Argmax returns the index of the largest value (the first on ties).
func Argmax(v []float32) int {
	best := 0
	for i := range v {
		if v[i] > v[best] {
			best = i
		}
	}
	return best
}
