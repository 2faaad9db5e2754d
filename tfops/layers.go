package tfops

import (
	"math"

	tf "github.com/galeone/tensorflow/tensorflow/go"
	"github.com/galeone/tensorflow/tensorflow/go/op"
)

// Conv configures a 2-D convolution over NHWC input.
type Conv struct {
	Filters int64
	Kernel  int64
	Stride  int64 // default 1
	Pad     int64 // pixels on each side, as PyTorch's padding=
	Bias    bool
	// Init of the kernel under InitTorch (the network's own choice); nil
	// means PyTorch's default (TorchDefault). Other schemes replace it.
	Init func(fanIn, fanOut int64) Init
}

// HeFanOut is the Conv.Init for He-normal (fan-out) kernels.
func HeFanOut(_, fanOut int64) Init { return HeNormalFanOut(fanOut) }

// Conv2D adds a convolution (and its bias) called name.
//
// Padding is given in pixels like the study's PyTorch code. TensorFlow's
// "SAME" pads asymmetrically when the stride is 2, so it is used only where
// it equals symmetric padding (stride 1, kernel 2·pad+1); otherwise the input
// is zero-padded explicitly and convolved "VALID".
func (n *Net) Conv2D(name string, x tf.Output, c Conv) tf.Output {
	if c.Stride == 0 {
		c.Stride = 1
	}
	in := n.dims(name, x, 4)
	cin := in[3]
	fanIn, fanOut := cin*c.Kernel*c.Kernel, c.Filters*c.Kernel*c.Kernel
	kinit, binit := layerInit(n.b.store.Init(), fanIn, fanOut, c.Init)
	s := n.s.SubScope(name)
	w, wr := n.variable(name, "kernel", []int64{c.Kernel, c.Kernel, cin, c.Filters}, RoleKernel, kinit)
	vars := []*Variable{w}
	padding := "VALID"
	switch {
	case c.Pad == 0:
	case c.Stride == 1 && c.Kernel == 2*c.Pad+1:
		padding = "SAME"
	default:
		x = op.Pad(s, x, op.Const(s.SubScope("paddings"), [][]int32{{0, 0}, {int32(c.Pad), int32(c.Pad)}, {int32(c.Pad), int32(c.Pad)}, {0, 0}}))
	}
	y := op.Conv2D(s, x, wr, []int64{1, c.Stride, c.Stride, 1}, padding, op.Conv2DDataFormat("NHWC"))
	if c.Bias {
		b, br := n.variable(name, "bias", []int64{c.Filters}, RoleBias, binit)
		vars = append(vars, b)
		y = op.BiasAdd(s, y, br)
	}
	out := n.dims(name, y, 4)
	n.record(name, "conv", y, vars, 2*fanIn*c.Filters*out[1]*out[2])
	return y
}

// Dense adds a fully connected layer called name, y = x·W + b, initialised
// by the store's scheme.
func (n *Net) Dense(name string, x tf.Output, units int64) tf.Output {
	in := n.dims(name, x, 2)[1]
	s := n.s.SubScope(name)
	kinit, binit := layerInit(n.b.store.Init(), in, units, nil)
	w, wr := n.variable(name, "kernel", []int64{in, units}, RoleKernel, kinit)
	b, br := n.variable(name, "bias", []int64{units}, RoleBias, binit)
	y := op.BiasAdd(s, op.MatMul(s, x, wr), br)
	n.record(name, "dense", y, []*Variable{w, b}, 2*in*units)
	return y
}

// Pool configures a max or average pool. Output sizes use floor mode.
type Pool struct {
	Size   int64
	Stride int64 // default Size
	Pad    int64 // pixels on each side
}

func (p Pool) geometry() (ksize, strides []int64) {
	if p.Stride == 0 {
		p.Stride = p.Size
	}
	return []int64{1, p.Size, p.Size, 1}, []int64{1, p.Stride, p.Stride, 1}
}

// MaxPool adds a max pool called name. Padded positions hold -inf, as in
// PyTorch, so they never win; "SAME" is used where it is the same thing.
func (n *Net) MaxPool(name string, x tf.Output, p Pool) tf.Output {
	ksize, strides := p.geometry()
	s := n.s.SubScope(name)
	padding := "VALID"
	switch {
	case p.Pad == 0:
	case strides[1] == 1 && p.Size == 2*p.Pad+1:
		padding = "SAME" // TF's SAME max pool ignores padding: same as -inf
	default:
		pads := op.Const(s.SubScope("paddings"), [][]int32{{0, 0}, {int32(p.Pad), int32(p.Pad)}, {int32(p.Pad), int32(p.Pad)}, {0, 0}})
		x = op.PadV2(s, x, pads, op.Const(s.SubScope("neg_inf"), float32(math.Inf(-1))))
	}
	y := op.MaxPool(s, x, ksize, strides, padding, op.MaxPoolDataFormat("NHWC"))
	n.dims(name, y, 4)
	n.record(name, "maxpool", y, nil, 0)
	return y
}

// AvgPool adds an unpadded average pool called name (the study uses no
// padded average pools).
func (n *Net) AvgPool(name string, x tf.Output, p Pool) tf.Output {
	if p.Pad != 0 {
		n.fail(name, "padded average pooling is not supported")
		return x
	}
	ksize, strides := p.geometry()
	y := op.AvgPool(n.s.SubScope(name), x, ksize, strides, "VALID", op.AvgPoolDataFormat("NHWC"))
	n.dims(name, y, 4)
	n.record(name, "avgpool", y, nil, 0)
	return y
}

// GlobalAvgPool averages over height and width: [N,H,W,C] → [N,C].
func (n *Net) GlobalAvgPool(name string, x tf.Output) tf.Output {
	s := n.s.SubScope(name)
	y := op.Mean(s, x, op.Const(s.SubScope("axes"), []int32{1, 2}))
	n.record(name, "globalavgpool", y, nil, 0)
	return y
}

// BNMomentum is PyTorch's batch-norm momentum: moving ← (1-m)·moving + m·batch.
const BNMomentum = 0.1

// BNEpsilon is PyTorch's batch-norm epsilon.
const BNEpsilon = 1e-5

// BatchNorm adds batch normalisation over the channel axis of NHWC input,
// with FusedBatchNormV3 (the fused op whose gradient is registered).
//
// In training it normalises with the batch statistics and queues updates of
// the moving statistics (the op does not update them itself in graph mode);
// in inference it uses the moving statistics. data_format, epsilon and
// is_training are always set explicitly (an empty data_format broke the
// gradient in some TF versions).
func (n *Net) BatchNorm(name string, x tf.Output) tf.Output {
	c := n.dims(name, x, 4)[3]
	s := n.s.SubScope(name)
	g, gr := n.variable(name, "gamma", []int64{c}, RoleScale, Constant(1))
	b, br := n.variable(name, "beta", []int64{c}, RoleOffset, Constant(0))
	mm, mmr := n.variable(name, "moving_mean", []int64{c}, RoleMovingMean, Constant(0))
	mv, mvr := n.variable(name, "moving_variance", []int64{c}, RoleMovingVar, Constant(1))
	training := n.Training()
	attrs := []op.FusedBatchNormV3Attr{op.FusedBatchNormV3Epsilon(BNEpsilon), op.FusedBatchNormV3DataFormat("NHWC"), op.FusedBatchNormV3IsTraining(training)}
	var y, mean, variance tf.Output
	if training {
		empty := op.Const(s.SubScope("empty"), []float32{})
		y, mean, variance, _, _, _ = op.FusedBatchNormV3(s, x, gr, br, empty, empty, attrs...)
		// batch_variance is Bessel-corrected, like PyTorch's running_var update.
		n.b.updates = append(n.b.updates,
			movingUpdate(s.SubScope("update_mean"), mm.Handle, mmr, mean),
			movingUpdate(s.SubScope("update_variance"), mv.Handle, mvr, variance))
	} else {
		y, _, _, _, _, _ = op.FusedBatchNormV3(s, x, gr, br, mmr, mvr, attrs...)
	}
	n.record(name, "batchnorm", y, []*Variable{g, b, mm, mv}, 0)
	return y
}

// movingUpdate assigns moving ← moving - m·(moving - batch).
func movingUpdate(s *op.Scope, handle, moving, batch tf.Output) *tf.Operation {
	delta := op.Mul(s, op.Sub(s, moving, batch), op.Const(s.SubScope("momentum"), float32(BNMomentum)))
	return op.AssignSubVariableOp(s, handle, delta)
}

// Dropout zeroes each element with probability rate and scales the rest by
// 1/(1-rate) in training; it is the identity in inference. Masks come from a
// stateless generator keyed by (seed, layer, step) so that a run replays
// exactly, including after a resume.
func (n *Net) Dropout(name string, x tf.Output, rate float32) tf.Output {
	if !n.Training() || rate <= 0 {
		return x
	}
	if rate >= 1 {
		n.fail(name, "dropout rate %v must be below 1", rate)
		return x
	}
	s := n.s.SubScope(name)
	keep := 1 - rate
	key := op.Pack(s.SubScope("key"), []tf.Output{
		op.Const(s.SubScope("layer"), n.b.store.Seed()^int64(Hash(n.join(name)))),
		n.b.rngStep,
	})
	u := op.StatelessRandomUniform(s, op.Shape(s, x), key)
	mask := op.Floor(s, op.Add(s, u, op.Const(s.SubScope("keep"), keep)))
	y := op.Mul(s, x, op.Mul(s.SubScope("scaled_mask"), mask, op.Const(s.SubScope("scale"), 1/keep)))
	n.record(name, "dropout", y, nil, 0)
	return y
}

// ReLU applies max(x, 0).
//
// Generated op wrappers name an op after its type, so every op that is not
// inside a layer's own sub-scope gets a fresh one (SubScope makes names unique).
func (n *Net) ReLU(x tf.Output) tf.Output { return op.Relu(n.s.SubScope("relu"), x) }

// Concat joins NHWC tensors along the channel axis.
func (n *Net) Concat(name string, xs ...tf.Output) tf.Output {
	s := n.s.SubScope(name)
	y := op.ConcatV2(s, xs, op.Const(s.SubScope("axis"), int32(3)))
	n.record(name, "concat", y, nil, 0)
	return y
}

// Flatten reshapes [N, ...] to [N, prod(...)].
func (n *Net) Flatten(name string, x tf.Output) tf.Output {
	in := n.dims(name, x, 4)
	s := n.s.SubScope(name)
	y := op.Reshape(s, x, op.Const(s.SubScope("shape"), []int64{-1, in[1] * in[2] * in[3]}))
	n.record(name, "flatten", y, nil, 0)
	return y
}

// Add sums two tensors of the same shape (a residual connection).
func (n *Net) Add(name string, a, b tf.Output) tf.Output {
	return op.AddV2(n.s.SubScope(name), a, b)
}

// Channels returns the channel count of an NHWC tensor with a static shape.
func (n *Net) Channels(x tf.Output) int64 { return n.dims("channels", x, 4)[3] }
