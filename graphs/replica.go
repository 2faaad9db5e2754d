package graphs

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"time"

	tf "github.com/galeone/tensorflow/tensorflow/go"
	"github.com/galeone/tensorflow/tensorflow/go/op"

	"github.com/kfash-tf/kfash-tf/augment"
	"github.com/kfash-tf/kfash-tf/graphs/runs"
	"github.com/kfash-tf/kfash-tf/tfops"
)

// This file runs the collectives of collective.go: a replica's trainer,
// its start, step and end of epoch, and the two helpers a launcher uses
// (BroadcastBytes, AllReduceBench).

// ErrClusterStopped is returned by Fit on the tasks of a cluster when
// another task was interrupted (SIGINT, SIGTERM): every task stops after
// the same step, and the chief has saved the run. It wraps
// context.Canceled, as an interrupted Fit's error does.
var ErrClusterStopped = fmt.Errorf("a task of the cluster was interrupted: %w", context.Canceled)

// NewReplicaTrainer opens a session on r's server for tg, a graph built
// with ModelConfig.Sync: the trainer of one task of a cluster. Its Fit
// averages the gradients of every step over the tasks and adds up their
// validation; the tasks must call SyncStart first.
func NewReplicaTrainer(tg *TrainGraph, inputSize int, sc runs.SessionConfig, r *Replica) (*Trainer, error) {
	if tg.sync == nil || r == nil {
		return nil, errors.New("a replica trainer needs a graph built with ModelConfig.Sync and a started Replica")
	}
	if tg.sync.cfg.Tasks != r.Cluster.Size() || tg.sync.cfg.Chief != r.Cluster.IsChief() {
		return nil, fmt.Errorf("the graph is built for %d tasks (chief %v), the replica is task %d of %d",
			tg.sync.cfg.Tasks, tg.sync.cfg.Chief, r.Cluster.Task, r.Cluster.Size())
	}
	sess, err := NewReplicaSession(tg.Graph, sc, r)
	if err != nil {
		return nil, err
	}
	return &Trainer{TG: tg, Sess: sess, size: int64(inputSize), replica: r}, nil
}

// SyncStart makes every task of a cluster start from the chief's variables
// and loop state. The chief calls it after Initialize or a restore, with
// its loop state (nil: a new run) and gets it back; the other tasks call
// it (st is ignored) and get the chief's. It waits for every task, up to
// the replica's timeout.
func (t *Trainer) SyncStart(st *runs.LoopState) (*runs.LoopState, error) {
	so := t.TG.sync
	if so == nil {
		return st, nil
	}
	if so.cfg.Chief {
		state, err := tf.NewTensor(encodeState(st))
		if err != nil {
			return nil, err
		}
		if _, err := t.Sess.Run(map[tf.Output]*tf.Tensor{so.stateIn: state}, nil, so.start); err != nil {
			return nil, fmt.Errorf("sending the weights to the other tasks: %w", t.replica.peerError(err))
		}
		return st, nil
	}
	out, err := t.Sess.Run(nil, []tf.Output{so.stateOut}, so.start)
	if err != nil {
		return nil, fmt.Errorf("receiving the weights from the chief: %w", t.replica.peerError(err))
	}
	return decodeState(out[0].Value().([]float64)), nil
}

// encodeState lays st out as float64s (exact for every field: counts stay
// far below 2^53); the first says whether there is a state.
func encodeState(st *runs.LoopState) []float64 {
	v := make([]float64, stateLen)
	if st == nil {
		return v
	}
	copy(v, []float64{1, float64(st.Epoch), float64(st.Step), float64(st.BestEpoch), st.Best, float64(st.SinceBest),
		float64(st.BatchesDone), st.LossSum, float64(st.Correct), float64(st.Seen)})
	return v
}

func decodeState(v []float64) *runs.LoopState {
	if len(v) != stateLen || v[0] == 0 {
		return nil
	}
	return &runs.LoopState{Epoch: int(v[1]), Step: int64(v[2]), BestEpoch: int(v[3]), Best: v[4], SinceBest: int(v[5]),
		BatchesDone: int(v[6]), LossSum: v[7], Correct: int64(v[8]), Seen: int64(v[9])}
}

// stepResult is a training step as the loop counts it: on a replica, the
// figures of every task's batch together.
type stepResult struct {
	loss            float64 // mean loss per example (of the global batch)
	correct, images int64
	stop            bool // a task asked every task to stop after this step
}

// step runs one training step; on a replica stop asks every task to stop
// after it.
func (t *Trainer) step(b *augment.Batch, lr float64, step int64, stop bool) (stepResult, error) {
	so := t.TG.sync
	if so == nil {
		loss, correct, err := t.TrainBatch(b, lr, step)
		return stepResult{loss: loss, correct: int64(correct), images: int64(b.N)}, err
	}
	feeds, err := t.feeds(b)
	if err != nil {
		return stepResult{}, err
	}
	flag := float32(0)
	if stop {
		flag = 1
	}
	lrT, _ := tf.NewTensor(float32(lr))
	stepT, _ := tf.NewTensor(step)
	stopT, _ := tf.NewTensor(flag)
	feeds[t.TG.LR], feeds[t.TG.RNGStep], feeds[so.stop] = lrT, stepT, stopT
	out, err := t.Sess.Run(feeds, []tf.Output{so.figures}, []*tf.Operation{t.TG.Step})
	freeFeeds(feeds)
	if err != nil {
		return stepResult{}, fmt.Errorf("training step %d: %w", step, t.replica.peerError(err))
	}
	f := out[0].Value().([]float32)
	tfops.Free(out...)
	// The figures are means over the tasks: the loss of the global batch
	// when every task's batch has the same size, counts times the tasks.
	n := float64(so.cfg.Tasks)
	return stepResult{loss: float64(f[0]), correct: int64(math.Round(float64(f[1]) * n)),
		images: int64(math.Round(float64(f[2]) * n)), stop: f[3] > 0}, nil
}

// syncEpochEnd ends a replica's epoch: it averages the batch-norm moving
// statistics, validates this task's shard of val and adds the figures of
// every task. stop asks every task to stop after the epoch; the result's
// says whether one did. Validation is not cut short by ctx: every task
// must reach the sum.
func (t *Trainer) syncEpochEnd(ctx context.Context, val Batches, classes, trainSkipped int, stop bool) (ev EvalResult, skipped int, stopAll bool, err error) {
	so := t.TG.sync
	if so.average != nil {
		if _, err := t.Sess.Run(nil, nil, []*tf.Operation{so.average}); err != nil {
			return ev, 0, false, fmt.Errorf("averaging the batch-norm statistics: %w", t.replica.peerError(err))
		}
	}
	ev, err = t.Evaluate(context.WithoutCancel(ctx), val, classes, nil)
	if err != nil {
		return ev, 0, false, err
	}
	v := make([]float64, epochFixedLen+classes*classes)
	v[0], v[1], v[2], v[3] = ev.lossSum, float64(ev.Examples), float64(ev.Skipped), float64(trainSkipped)
	if stop {
		v[4] = 1
	}
	for i, row := range ev.Confusion.Counts {
		for j, n := range row {
			v[epochFixedLen+i*classes+j] = float64(n)
		}
	}
	in, err := tf.NewTensor(v)
	if err != nil {
		return ev, 0, false, err
	}
	out, err := t.Sess.Run(map[tf.Output]*tf.Tensor{so.epochIn: in}, []tf.Output{so.epochOut}, nil)
	if err != nil {
		return ev, 0, false, fmt.Errorf("adding up the validation of every task: %w", t.replica.peerError(err))
	}
	sum := out[0].Value().([]float64)
	res := EvalResult{Confusion: runs.NewConfusion(classes), Examples: int(sum[1]), Skipped: int(sum[2]), lossSum: sum[0]}
	for i := range res.Confusion.Counts {
		for j := range res.Confusion.Counts[i] {
			res.Confusion.Counts[i][j] = int64(sum[epochFixedLen+i*classes+j])
		}
	}
	res.Loss = math.NaN()
	if res.Examples > 0 {
		res.Loss = res.lossSum / float64(res.Examples)
	}
	return res, int(sum[3]), sum[4] > 0, nil
}

// BroadcastBytes sends data from the chief to every task of r's cluster:
// the chief passes its bytes and gets them back, the other tasks get the
// chief's (their data is ignored). Every task must call it, once per
// process (its collectives have fixed keys), before any other collective;
// it waits for the others up to r.Timeout. sc configures its session.
func (r *Replica) BroadcastBytes(data []byte, sc runs.SessionConfig) ([]byte, error) {
	if r.Cluster.Size() < 2 {
		return data, nil
	}
	c := newCollectives(r.Cluster.Size(), r.Timeout)
	s := op.NewScope()
	var lengthIn, lengthOut, bytesIn, bytesOut, shape tf.Output
	var sendLen, sendBytes *tf.Operation
	if r.Cluster.IsChief() {
		lengthIn = op.Placeholder(s.SubScope("length"), tf.Int64, op.PlaceholderShape(tf.MakeShape(1)))
		bytesIn = op.Placeholder(s.SubScope("bytes"), tf.Int64, op.PlaceholderShape(tf.MakeShape(-1)))
		sendLen = c.send(s.SubScope("send_length"), lengthIn, keyBytesLen).Op
		sendBytes = c.send(s.SubScope("send_bytes"), bytesIn, keyBytes).Op
	} else {
		lengthOut = c.recv(s.SubScope("recv_length"), op.Const(s.SubScope("length_shape"), []int64{1}), tf.Int64, keyBytesLen)
		shape = op.Placeholder(s.SubScope("shape"), tf.Int64, op.PlaceholderShape(tf.MakeShape(1)))
		bytesOut = c.recv(s.SubScope("recv_bytes"), shape, tf.Int64, keyBytes)
	}
	g, err := s.Finalize()
	if err != nil {
		return nil, fmt.Errorf("building the broadcast: %w", err)
	}
	sess, err := NewReplicaSession(g, sc, r)
	if err != nil {
		return nil, err
	}
	defer sess.Close()
	if r.Cluster.IsChief() {
		ints := make([]int64, len(data))
		for i, b := range data {
			ints[i] = int64(b)
		}
		lt, _ := tf.NewTensor([]int64{int64(len(data))})
		bt, _ := tf.NewTensor(ints)
		// Two runs, as the receivers make: the tasks must run the same
		// collectives in the same session runs, which TensorFlow numbers
		// in step for all of them.
		if _, err := sess.Run(map[tf.Output]*tf.Tensor{lengthIn: lt}, nil, []*tf.Operation{sendLen}); err != nil {
			return nil, r.peerError(err)
		}
		if _, err := sess.Run(map[tf.Output]*tf.Tensor{bytesIn: bt}, nil, []*tf.Operation{sendBytes}); err != nil {
			return nil, r.peerError(err)
		}
		return data, nil
	}
	out, err := sess.Run(nil, []tf.Output{lengthOut}, nil)
	if err != nil {
		return nil, r.peerError(err)
	}
	st, _ := tf.NewTensor(out[0].Value().([]int64))
	out, err = sess.Run(map[tf.Output]*tf.Tensor{shape: st}, []tf.Output{bytesOut}, nil)
	if err != nil {
		return nil, r.peerError(err)
	}
	ints := out[0].Value().([]int64)
	got := make([]byte, len(ints))
	for i, v := range ints {
		got[i] = byte(v)
	}
	return got, nil
}

// AllReduceTiming is what AllReduceBench measured.
type AllReduceTiming struct {
	Floats      int64           // float32 elements reduced per run, all tensors together
	Collectives int             // collective ops per run
	Runs        []time.Duration // each timed run, after one untimed warm-up
}

// Median is the median of Runs (0 without runs).
func (a AllReduceTiming) Median() time.Duration { return medianDuration(a.Runs) }

// AllReduceBench times the mean all-reduce of float32 tensors of the given
// element counts across r's cluster, as training reduces gradients: fused
// (packed into large flat tensors, as the training graph does) or one
// collective per tensor, for n timed runs after an untimed one. Every task
// must make the same calls in the same order (each call takes fresh
// instance keys, counted by r). sc configures its session.
func (r *Replica) AllReduceBench(sizes []int64, fused bool, n int, sc runs.SessionConfig) (AllReduceTiming, error) {
	res := AllReduceTiming{}
	if len(sizes) == 0 || n < 1 {
		return res, errors.New("AllReduceBench needs tensors and at least one run")
	}
	c := newCollectives(r.Cluster.Size(), r.Timeout)
	s := op.NewScope()
	xs := make([]tf.Output, len(sizes))
	shapes := make([][]int64, len(sizes))
	for i, sz := range sizes {
		if sz < 1 {
			return res, fmt.Errorf("tensor %d has %d elements", i, sz)
		}
		xs[i] = op.Fill(s.SubScope("x"), op.Const(s.SubScope("dims"), []int64{sz}), op.Const(s.SubScope("one"), float32(1)))
		shapes[i] = []int64{sz}
		res.Floats += sz
	}
	key := keyBenchFirst + r.benchKeys
	var outs []tf.Output
	if fused {
		outs = c.meanFused(s.SubScope("fused"), xs, shapes, key, maxPackFloats)
		res.Collectives = len(packs(sizes, maxPackFloats))
	} else {
		for i, x := range xs {
			outs = append(outs, c.reduce(s.SubScope("each"), x, key+int64(i), "Div"))
		}
		res.Collectives = len(sizes)
	}
	r.benchKeys += int64(res.Collectives)
	targets := make([]*tf.Operation, len(outs))
	for i, o := range outs {
		targets[i] = o.Op
	}
	g, err := s.Finalize()
	if err != nil {
		return res, err
	}
	sess, err := NewReplicaSession(g, sc, r)
	if err != nil {
		return res, err
	}
	defer sess.Close()
	for i := 0; i <= n; i++ {
		start := time.Now()
		if _, err := sess.Run(nil, nil, targets); err != nil {
			return res, r.peerError(err)
		}
		if i > 0 {
			res.Runs = append(res.Runs, time.Since(start))
		}
	}
	return res, nil
}

// medianDuration is the median of ds (0 for none).
func medianDuration(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
