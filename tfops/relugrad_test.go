package tfops_test

import (
	"math"
	"math/rand"
	"testing"

	tf "github.com/galeone/tensorflow/tensorflow/go"
	"github.com/galeone/tensorflow/tensorflow/go/op"

	"github.com/kfash-tf/kfash-tf/tfops"
)

// gradsOf builds fn in training mode on a fixed input, differentiates the
// sum of its output with respect to the input and every trainable read,
// optionally applies ReluGradsFromOutputs, and returns the gradients, the
// number of ReluGrads rewritten and the graph.
func gradsOf(t *testing.T, fn func(n *tfops.Net, x tf.Output) tf.Output, shape []int64, rewrite bool) ([][]float32, int, *tf.Graph) {
	t.Helper()
	g := tf.NewGraph()
	s := op.NewScopeWithGraph(g)
	store := tfops.NewStore(s.SubScope("vars"), 7)
	x := op.Placeholder(s.SubScope("x"), tf.Float, op.PlaceholderShape(tf.MakeShape(shape...)))
	n := tfops.NewNet(s.SubScope("net"), store, tfops.Training)
	y := fn(n, x)
	rank := int32(len(shape))
	if ys, err := y.Shape().ToSlice(); err == nil {
		rank = int32(len(ys))
	}
	axes := make([]int32, rank)
	for i := range axes {
		axes[i] = int32(i)
	}
	loss := op.Sum(s.SubScope("loss"), y, op.Const(s.SubScope("axes"), axes))
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	wrt := []tf.Output{x}
	for _, v := range store.Trainable() {
		wrt = append(wrt, n.Reads()[v])
	}
	grads, err := g.AddGradients("grad", []tf.Output{loss}, wrt, nil)
	if err != nil {
		t.Fatal(err)
	}
	changed := 0
	if rewrite {
		if changed, err = tfops.ReluGradsFromOutputs(g); err != nil {
			t.Fatal(err)
		}
	}
	sess, err := tf.NewSession(g, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	if _, err := sess.Run(nil, nil, store.InitOps()); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewSource(3))
	size := int64(1)
	for _, d := range shape {
		size *= d
	}
	in := make([]float32, size)
	for i := range in {
		in[i] = float32(rng.NormFloat64())
	}
	xt, err := tfops.Float32Tensor(in, shape)
	if err != nil {
		t.Fatal(err)
	}
	out, err := sess.Run(map[tf.Output]*tf.Tensor{x: xt}, grads, nil)
	if err != nil {
		t.Fatal(err)
	}
	vals := make([][]float32, len(out))
	for i, o := range out {
		if vals[i], err = tfops.Float32s(o); err != nil {
			t.Fatal(err)
		}
	}
	return vals, changed, g
}

// Reading the Relu's output changes no gradient, and every ReluGrad of a
// Relu after a BiasAdd then reads the Relu. (Not bit for bit: the rewrite
// lets grappler pick fused kernels, which may round differently.)
func TestReluGradsFromOutputs(t *testing.T) {
	cases := []struct {
		name  string
		shape []int64
		relus int
		build func(n *tfops.Net, x tf.Output) tf.Output
	}{
		{"conv_bias_relu", []int64{2, 6, 6, 3}, 2, func(n *tfops.Net, x tf.Output) tf.Output {
			x = n.ReLU(n.Conv2D("c1", x, tfops.Conv{Filters: 4, Kernel: 3, Pad: 1, Bias: true}))
			return n.ReLU(n.Conv2D("c2", x, tfops.Conv{Filters: 2, Kernel: 3, Stride: 2, Pad: 1, Bias: true}))
		}},
		{"dense_relu", []int64{3, 5}, 1, func(n *tfops.Net, x tf.Output) tf.Output {
			return n.Dense("out", n.ReLU(n.Dense("hidden", x, 4)), 2)
		}},
		// Relus after batch norm (and a residual sum) are left alone.
		{"bn_relu_residual", []int64{2, 5, 5, 4}, 0, func(n *tfops.Net, x tf.Output) tf.Output {
			y := n.ReLU(n.BatchNorm("bn1", n.Conv2D("c1", x, tfops.Conv{Filters: 4, Kernel: 3, Pad: 1})))
			y = n.BatchNorm("bn2", n.Conv2D("c2", y, tfops.Conv{Filters: 4, Kernel: 3, Pad: 1}))
			return n.ReLU(n.Add("add", y, x))
		}},
		{"no_relu", []int64{2, 4}, 0, func(n *tfops.Net, x tf.Output) tf.Output {
			return n.Dense("out", x, 3)
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			want, _, _ := gradsOf(t, c.build, c.shape, false)
			got, changed, g := gradsOf(t, c.build, c.shape, true)
			if changed != c.relus {
				t.Errorf("rewrote %d ReluGrads, want %d", changed, c.relus)
			}
			for i := range want {
				if len(got[i]) != len(want[i]) {
					t.Fatalf("gradient %d: %d values, want %d", i, len(got[i]), len(want[i]))
				}
				for j := range want[i] {
					if d := math.Abs(float64(got[i][j] - want[i][j])); d > 1e-5*math.Max(1, math.Abs(float64(want[i][j]))) {
						t.Fatalf("gradient %d[%d] = %v after the rewrite, %v before", i, j, got[i][j], want[i][j])
					}
				}
			}
			for _, o := range g.Operations() {
				for k := 0; k < o.NumOutputs(); k++ {
					for _, cons := range o.Output(k).Consumers() {
						if cons.Op.Type() == "ReluGrad" && cons.Index == 1 && o.Type() == "BiasAdd" {
							t.Errorf("%s still reads %s (%s), not its Relu", cons.Op.Name(), o.Name(), o.Type())
						}
					}
				}
			}
		})
	}
}
