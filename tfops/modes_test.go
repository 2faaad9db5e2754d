package tfops_test

import (
	"math"
	"testing"

	tf "github.com/galeone/tensorflow/tensorflow/go"
	"github.com/galeone/tensorflow/tensorflow/go/op"

	"github.com/kfash-tf/kfash-tf/tfops"
)

// twoModes builds fn once per mode in one graph, sharing variables, the way
// the trainer does, and returns both outputs.
type twoModes struct {
	sess         *tf.Session
	scope        *op.Scope
	x            tf.Output
	train, infer tf.Output
	trainNet     *tfops.Net
	store        *tfops.Store
}

func buildTwoModes(t *testing.T, shape []int64, fn func(n *tfops.Net, x tf.Output) tf.Output) *twoModes {
	t.Helper()
	g := tf.NewGraph()
	s := op.NewScopeWithGraph(g)
	store := tfops.NewStore(s.SubScope("vars"), 5)
	x := op.Placeholder(s.SubScope("x"), tf.Float, op.PlaceholderShape(tf.MakeShape(shape...)))
	tn := tfops.NewNet(s.SubScope("train"), store, tfops.Training)
	in := tfops.NewNet(s.SubScope("infer"), store, tfops.Inference)
	m := &twoModes{scope: s, x: x, train: fn(tn, x), infer: fn(in, x), trainNet: tn, store: store}
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	sess, err := tf.NewSession(g, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sess.Close() })
	if inits := store.InitOps(); len(inits) > 0 {
		if _, err := sess.Run(nil, nil, inits); err != nil {
			t.Fatal(err)
		}
	}
	m.sess = sess
	return m
}

func (m *twoModes) run(t *testing.T, in []float32, shape []int64, fetch tf.Output, targets []*tf.Operation) []float32 {
	t.Helper()
	xt, err := tfops.Float32Tensor(in, shape)
	if err != nil {
		t.Fatal(err)
	}
	out, err := m.sess.Run(map[tf.Output]*tf.Tensor{m.x: xt}, []tf.Output{fetch}, targets)
	if err != nil {
		t.Fatal(err)
	}
	v, _ := tfops.Float32s(out[0])
	return v
}

func (m *twoModes) variable(t *testing.T, name string) []float32 {
	t.Helper()
	v := m.store.Lookup(name)
	if v == nil {
		t.Fatalf("no variable %s", name)
	}
	out, err := m.sess.Run(nil, []tf.Output{op.ReadVariableOp(m.scope.SubScope("read"), v.Handle, tf.Float)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	f, _ := tfops.Float32s(out[0])
	return f
}

func ramp(n int, scale float32) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(i%7)*scale + float32(i%3)
	}
	return v
}

// In training the moving statistics move toward the batch statistics by
// BNMomentum per step; in inference they stay put and are what normalises.
func TestBatchNormMovingAveragesMoveInTrainingOnly(t *testing.T) {
	shape := []int64{4, 2, 2, 3}
	m := buildTwoModes(t, shape, func(n *tfops.Net, x tf.Output) tf.Output { return n.BatchNorm("bn", x) })
	in := ramp(4*2*2*3, 2)

	// Inference: y = x / sqrt(1 + eps) with the initial moving stats (0, 1).
	y := m.run(t, in, shape, m.infer, nil)
	for i := range y {
		if want := in[i] / float32(math.Sqrt(1+tfops.BNEpsilon)); math.Abs(float64(y[i]-want)) > 1e-5 {
			t.Fatalf("inference y[%d] = %v, want %v (moving statistics)", i, y[i], want)
		}
	}
	if mm := m.variable(t, "bn/moving_mean"); mm[0] != 0 || mm[1] != 0 || mm[2] != 0 {
		t.Fatalf("inference moved the moving mean: %v", mm)
	}

	// Training: one step with the update ops.
	m.run(t, in, shape, m.train, m.trainNet.Updates())
	mean, variance := channelStats(in, 3)
	mm, mv := m.variable(t, "bn/moving_mean"), m.variable(t, "bn/moving_variance")
	for c := 0; c < 3; c++ {
		wantMean := tfops.BNMomentum * mean[c]
		wantVar := (1-tfops.BNMomentum)*1 + tfops.BNMomentum*variance[c]
		if math.Abs(float64(mm[c])-wantMean) > 1e-5 || math.Abs(float64(mv[c])-wantVar) > 1e-4 {
			t.Errorf("channel %d: moving (%v, %v), want (%v, %v)", c, mm[c], mv[c], wantMean, wantVar)
		}
	}
	// A training forward pass normalises with batch statistics.
	yt := m.run(t, in, shape, m.train, nil)
	tm, _ := channelStats(yt, 3)
	for c := 0; c < 3; c++ {
		if math.Abs(tm[c]) > 1e-5 {
			t.Errorf("training output channel %d has mean %v, want 0", c, tm[c])
		}
	}
}

// channelStats returns each channel's mean and unbiased variance.
func channelStats(v []float32, c int) (mean, variance []float64) {
	mean, variance = make([]float64, c), make([]float64, c)
	n := float64(len(v) / c)
	for i, x := range v {
		mean[i%c] += float64(x) / n
	}
	for i, x := range v {
		d := float64(x) - mean[i%c]
		variance[i%c] += d * d / (n - 1)
	}
	return mean, variance
}

// Dropout is the identity in inference; in training it zeroes about `rate`
// of the elements and scales the rest by 1/(1-rate).
func TestDropoutIdentityInInference(t *testing.T) {
	shape := []int64{8, 100}
	m := buildTwoModes(t, shape, func(n *tfops.Net, x tf.Output) tf.Output {
		// Identity: TF refuses to fetch a tensor that is also fed.
		return op.Identity(n.Scope().SubScope("out"), n.Dropout("drop", x, 0.25))
	})
	in := make([]float32, 800)
	for i := range in {
		in[i] = 1
	}
	y := m.run(t, in, shape, m.infer, nil)
	for i := range y {
		if y[i] != in[i] {
			t.Fatalf("inference y[%d] = %v, want %v", i, y[i], in[i])
		}
	}
	yt := m.run(t, in, shape, m.train, nil)
	zeros := 0
	for _, v := range yt {
		switch {
		case v == 0:
			zeros++
		case math.Abs(float64(v)-1/0.75) > 1e-6:
			t.Fatalf("kept element %v, want %v", v, 1/0.75)
		}
	}
	if zeros < 150 || zeros > 250 {
		t.Errorf("%d of 800 dropped at rate 0.25", zeros)
	}
}
