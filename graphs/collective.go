package graphs

import (
	"fmt"
	"time"

	tf "github.com/galeone/tensorflow/tensorflow/go"
	"github.com/galeone/tensorflow/tensorflow/go/op"

	"github.com/kfash-tf/kfash-tf/tfops"
)

// The collective ops of synchronous data-parallel training. Every task
// builds its own training graph with the same collectives under the same
// keys, and every task must run them in the same order: a task that skips
// one leaves the others waiting until the op's timeout.
//
// Per step, the gradients (and four step figures) are mean-all-reduced,
// fused into a few large flat tensors rather than one collective per
// variable: a collective costs a round of messages whatever its size, and
// networks have dozens of small tensors (biases) next to a few large ones.
// At the start the chief broadcasts every variable (weights, optimizer
// slots and step, batch-norm moving statistics) and the loop state; at the
// end of an epoch the tasks average their batch-norm moving statistics
// and add up their validation figures.
//
// Batch normalisation uses per-replica batch statistics during training,
// as MultiWorkerMirroredStrategy does by default (SyncBatchNormalization is
// its opt-in); the moving averages of each task follow its own batches
// and are averaged over the tasks at the end of every epoch, so that every
// task validates, and the chief saves, one model.
//
// The mean of the tasks' gradients is the gradient of the global batch
// when every task's batch has the same size and, with class weights, the
// same sum of weights; otherwise (a batch that lost unreadable files, or
// class weights) each task's batch counts equally, as in
// MultiWorkerMirroredStrategy with per-replica losses.

// SyncConfig makes a training graph one replica of synchronous
// data-parallel training (ModelConfig.Sync).
type SyncConfig struct {
	Tasks   int           // the number of replicas (1, a group of one, runs the replica path in one process: tests)
	Chief   bool          // whether this is task 0, which broadcasts the variables at the start
	Timeout time.Duration // bounds every collective op
}

// Instance keys of the collectives of one group: every task must give the
// same collective the same key. Fused tensors take consecutive keys from a
// base, one per pack.
const (
	groupKey      = 1
	keyState      = 1    // the loop state, from the chief
	keyEpoch      = 2    // the epoch's validation figures, summed
	keyBytesLen   = 3    // Replica.BroadcastBytes: the length
	keyBytes      = 4    // … and the bytes
	keyMoving     = 100  // + pack: batch-norm moving statistics, averaged
	keyGradients  = 1000 // + pack: gradients and step figures, averaged
	keyWeights    = 2000 // + pack: every variable, from the chief
	keyBenchFirst = 5000 // Replica.AllReduceBench: one key per collective it builds
	maxPackFloats = 16 << 20
	stepFigures   = 4 // loss, correct, images, stop
	stateLen      = 10
	epochFixedLen = 5 // validation loss sum, examples, skipped, train skipped, stop
)

// collectives builds the collective ops of one group of tasks.
type collectives struct {
	tasks   int
	timeout float32 // seconds
}

func newCollectives(tasks int, timeout time.Duration) collectives {
	return collectives{tasks: tasks, timeout: float32(timeout.Seconds())}
}

// keys returns the group size, group key and instance key inputs.
func (c collectives) keys(s *op.Scope, instance int64) (size, group, inst tf.Output) {
	return op.Const(s.SubScope("group_size"), int32(c.tasks)), op.Const(s.SubScope("group_key"), int32(groupKey)),
		op.Const(s.SubScope("instance_key"), int32(instance))
}

// reduce adds x over the tasks; final "Div" makes it the mean, "Id" the sum.
func (c collectives) reduce(s *op.Scope, x tf.Output, instance int64, final string) tf.Output {
	size, group, inst := c.keys(s, instance)
	return op.CollectiveReduceV2(s, x, size, group, inst, nil, "Add", final, op.CollectiveReduceV2TimeoutSeconds(c.timeout))
}

// send broadcasts x to the other tasks.
func (c collectives) send(s *op.Scope, x tf.Output, instance int64) tf.Output {
	size, group, inst := c.keys(s, instance)
	return op.CollectiveBcastSendV2(s, x, size, group, inst, op.CollectiveBcastSendV2TimeoutSeconds(c.timeout))
}

// recv receives what the sender of instance broadcasts, of the given shape.
func (c collectives) recv(s *op.Scope, shape tf.Output, dtype tf.DataType, instance int64) tf.Output {
	size, group, inst := c.keys(s, instance)
	return op.CollectiveBcastRecvV2(s, size, group, inst, shape, dtype, op.CollectiveBcastRecvV2TimeoutSeconds(c.timeout))
}

// packs groups tensors of the given element counts, in order, into packs
// of at most limit elements (a larger tensor is a pack of its own): the
// indices of each pack's tensors.
func packs(sizes []int64, limit int64) [][]int {
	var out [][]int
	var cur []int
	var n int64
	for i, sz := range sizes {
		if len(cur) > 0 && n+sz > limit {
			out = append(out, cur)
			cur, n = nil, 0
		}
		cur = append(cur, i)
		n += sz
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}

func elements(shape []int64) int64 {
	n := int64(1)
	for _, d := range shape {
		n *= d
	}
	return n
}

// flatten joins xs (of the given shapes) into one vector.
func flatten(s *op.Scope, xs []tf.Output) tf.Output {
	flat := make([]tf.Output, len(xs))
	for i, x := range xs {
		flat[i] = op.Reshape(s.SubScope("flat"), x, op.Const(s.SubScope("minus_one"), []int32{-1}))
	}
	if len(flat) == 1 {
		return flat[0]
	}
	return op.ConcatV2(s.SubScope("concat"), flat, op.Const(s.SubScope("axis"), int32(0)))
}

// unflatten cuts a vector made by flatten back into tensors of shapes.
func unflatten(s *op.Scope, v tf.Output, shapes [][]int64) []tf.Output {
	parts := []tf.Output{v}
	if len(shapes) > 1 {
		sizes := make([]int64, len(shapes))
		for i, sh := range shapes {
			sizes[i] = elements(sh)
		}
		parts = op.SplitV(s.SubScope("split"), v, op.Const(s.SubScope("sizes"), sizes), op.Const(s.SubScope("axis"), int32(0)), int64(len(shapes)))
	}
	out := make([]tf.Output, len(shapes))
	for i, sh := range shapes {
		out[i] = op.Reshape(s.SubScope("shape"), parts[i], op.Const(s.SubScope("dims"), shapeOrScalar(sh)))
	}
	return out
}

// shapeOrScalar is shape as Reshape's int64 input ([] for a scalar).
func shapeOrScalar(sh []int64) []int64 {
	if sh == nil {
		return []int64{}
	}
	return sh
}

// meanFused returns the mean over the tasks of every tensor of xs (of the
// given shapes), reduced in packs of at most limit elements (maxPackFloats
// in the graphs) from instance key base on.
func (c collectives) meanFused(s *op.Scope, xs []tf.Output, shapes [][]int64, base, limit int64) []tf.Output {
	sizes := make([]int64, len(shapes))
	for i, sh := range shapes {
		sizes[i] = elements(sh)
	}
	out := make([]tf.Output, len(xs))
	for p, idx := range packs(sizes, limit) {
		ps := s.SubScope(fmt.Sprintf("pack%d", p))
		in := make([]tf.Output, len(idx))
		sh := make([][]int64, len(idx))
		for j, i := range idx {
			in[j], sh[j] = xs[i], shapes[i]
		}
		reduced := unflatten(ps, c.reduce(ps, flatten(ps, in), base+int64(p), "Div"), sh)
		for j, i := range idx {
			out[i] = reduced[j]
		}
	}
	return out
}

// syncOps are the collectives of a replica's training graph.
type syncOps struct {
	cfg SyncConfig
	// Per step: stop is fed 1 by a task asked to stop (SIGINT), 0
	// otherwise; figures are the means over the tasks of the step's loss,
	// correct predictions, images and stop requests.
	stop    tf.Output
	figures tf.Output
	// At the start: the chief feeds stateIn, and runs start to send its
	// variables and it; the others run start to receive and assign them,
	// fetching stateOut.
	stateIn, stateOut tf.Output
	start             []*tf.Operation
	// At the end of an epoch: average (nil for a network without moving
	// statistics) sets every task's to their mean; epochIn is summed over
	// the tasks into epochOut.
	average           *tf.Operation
	epochIn, epochOut tf.Output
}

// addSyncStep replaces grads by their means over the tasks, fused with the
// step's figures, and returns them.
func (tg *TrainGraph) addSyncStep(s *op.Scope, cfg SyncConfig, grads []tf.Output) []tf.Output {
	c := newCollectives(cfg.Tasks, cfg.Timeout)
	so := &syncOps{cfg: cfg}
	tg.sync = so
	so.stop = op.Placeholder(s.SubScope("stop"), tf.Float, op.PlaceholderShape(tf.ScalarShape()))
	fs := s.SubScope("figures")
	images := op.Cast(fs.SubScope("images"), op.Size(fs, tg.Labels), tf.Float)
	correct := op.Cast(fs.SubScope("correct"), tg.Correct, tf.Float)
	figures := op.Pack(fs, []tf.Output{tg.Loss, correct, images, so.stop})

	xs := append(append([]tf.Output(nil), grads...), figures)
	shapes := make([][]int64, 0, len(xs))
	for _, v := range tg.Params {
		shapes = append(shapes, v.Shape)
	}
	shapes = append(shapes, []int64{stepFigures})
	reduced := c.meanFused(s.SubScope("gradients"), xs, shapes, keyGradients, maxPackFloats)
	so.figures = reduced[len(grads)]
	return reduced[:len(grads)]
}

// addSyncStartAndEpoch adds the broadcast of every variable of the store
// from the chief, and the end-of-epoch collectives (classes: the size of
// the confusion matrix).
func (tg *TrainGraph) addSyncStartAndEpoch(s *op.Scope, classes int) {
	so := tg.sync
	c := newCollectives(so.cfg.Tasks, so.cfg.Timeout)
	vars := tg.Store.Variables()

	// The start: variables in packs, then the loop state.
	ss := s.SubScope("start")
	sizes := make([]int64, len(vars))
	for i, v := range vars {
		sizes[i] = v.Size()
	}
	for p, idx := range packs(sizes, maxPackFloats) {
		ps := ss.SubScope(fmt.Sprintf("pack%d", p))
		key := keyWeights + int64(p)
		if so.cfg.Chief {
			reads := make([]tf.Output, len(idx))
			for j, i := range idx {
				reads[j] = op.ReadVariableOp(ps.SubScope("read"), vars[i].Handle, tf.Float)
			}
			so.start = append(so.start, c.send(ps, flatten(ps, reads), key).Op)
			continue
		}
		var n int64
		shapes := make([][]int64, len(idx))
		for j, i := range idx {
			shapes[j] = vars[i].Shape
			n += sizes[i]
		}
		got := unflatten(ps, c.recv(ps, op.Const(ps.SubScope("total"), []int64{n}), tf.Float, key), shapes)
		for j, i := range idx {
			so.start = append(so.start, op.AssignVariableOp(ps.SubScope("assign"), vars[i].Handle, got[j]))
		}
	}
	if so.cfg.Chief {
		so.stateIn = op.Placeholder(ss.SubScope("state"), tf.Double, op.PlaceholderShape(tf.MakeShape(stateLen)))
		so.start = append(so.start, c.send(ss.SubScope("send_state"), so.stateIn, keyState).Op)
	} else {
		so.stateOut = c.recv(ss.SubScope("recv_state"), op.Const(ss.SubScope("state_shape"), []int64{stateLen}), tf.Double, keyState)
	}

	// The end of an epoch.
	es := s.SubScope("epoch")
	var moving []*tfops.Variable
	for _, v := range vars {
		if v.Role == tfops.RoleMovingMean || v.Role == tfops.RoleMovingVar {
			moving = append(moving, v)
		}
	}
	if len(moving) > 0 {
		ms := es.SubScope("moving")
		reads := make([]tf.Output, len(moving))
		shapes := make([][]int64, len(moving))
		for i, v := range moving {
			reads[i], shapes[i] = op.ReadVariableOp(ms.SubScope("read"), v.Handle, tf.Float), v.Shape
		}
		means := c.meanFused(ms, reads, shapes, keyMoving, maxPackFloats)
		assigns := make([]*tf.Operation, len(moving))
		for i, v := range moving {
			assigns[i] = op.AssignVariableOp(ms.SubScope("assign"), v.Handle, means[i])
		}
		so.average = op.NoOp(ms.SubScope("averaged").WithControlDependencies(assigns...))
	}
	so.epochIn = op.Placeholder(es.SubScope("figures"), tf.Double, op.PlaceholderShape(tf.MakeShape(int64(epochFixedLen+classes*classes))))
	so.epochOut = c.reduce(es.SubScope("sum"), so.epochIn, keyEpoch, "Id")
}
