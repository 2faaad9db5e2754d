// Package tfopstest checks layers and blocks built with tfops: it runs
// them and compares the gradients of Graph.AddGradients with central finite
// differences.
package tfopstest

import (
	"fmt"
	"math"
	"math/rand"

	tf "github.com/galeone/tensorflow/tensorflow/go"
	"github.com/galeone/tensorflow/tensorflow/go/op"

	"github.com/kfash-tf/kfash-tf/tfops"
)

// BuildFunc adds the layer or block under test to n on input x.
type BuildFunc func(n *tfops.Net, x tf.Output) tf.Output

// GradCheck is the result of comparing analytic and numeric directional
// derivatives of L = Σ y·r (r fixed random) along random directions in the
// joint space of the input and every trainable variable.
type GradCheck struct {
	Analytic, Numeric []float64 // one per direction
	Params            int       // trainable variables differentiated
	Discarded         int       // directions dropped because they crossed a ReLU kink
}

// MaxRelErr is the largest |analytic - numeric| / max(|analytic|, |numeric|, 0.1)
// over the directions.
func (g GradCheck) MaxRelErr() float64 {
	// The floor of 0.1 keeps a near-zero directional derivative from turning
	// rounding noise into a large relative error.
	worst := 0.0
	for i := range g.Analytic {
		d := math.Abs(g.Analytic[i]-g.Numeric[i]) / math.Max(math.Max(math.Abs(g.Numeric[i]), math.Abs(g.Analytic[i])), 0.1)
		worst = math.Max(worst, d)
	}
	return worst
}

// Check builds fn in mode on an input of the given static shape and compares
// gradients along `directions` random directions with step eps.
func Check(fn BuildFunc, inShape []int64, mode tfops.Mode, directions int, eps float64, seed int64) (GradCheck, error) {
	g := tf.NewGraph()
	s := op.NewScopeWithGraph(g)
	store := tfops.NewStore(s.SubScope("vars"), seed)
	x := op.Placeholder(s.SubScope("x"), tf.Float, op.PlaceholderShape(tf.MakeShape(inShape...)))
	n := tfops.NewNet(s.SubScope("net"), store, mode)
	y := fn(n, x)
	if err := s.Err(); err != nil {
		return GradCheck{}, err
	}
	yShape, err := y.Shape().ToSlice()
	if err != nil {
		return GradCheck{}, fmt.Errorf("output shape: %w", err)
	}
	rng := rand.New(rand.NewSource(seed))
	r := op.Const(s.SubScope("r"), randomTensor(rng, yShape, 1))
	loss := op.Sum(s.SubScope("loss"), op.Mul(s.SubScope("weighted"), y, r), op.Const(s.SubScope("axes"), seq(len(yShape))))

	// Differentiate with respect to the input and every trainable read;
	// finite differences perturb the same tensors by feeding them.
	wrt := []tf.Output{x}
	for _, v := range store.Trainable() {
		if read, ok := n.Reads()[v]; ok {
			wrt = append(wrt, read)
		}
	}
	if err := s.Err(); err != nil {
		return GradCheck{}, err
	}
	grads, err := g.AddGradients("grad", []tf.Output{loss}, wrt, nil)
	if err != nil {
		return GradCheck{}, fmt.Errorf("AddGradients: %w", err)
	}
	sess, err := tf.NewSession(g, nil)
	if err != nil {
		return GradCheck{}, err
	}
	defer sess.Close()
	if inits := store.InitOps(); len(inits) > 0 {
		if _, err := sess.Run(nil, nil, inits); err != nil {
			return GradCheck{}, fmt.Errorf("init: %w", err)
		}
	}
	// The point of evaluation: a random input and the initial variables.
	point := make([][]float32, len(wrt))
	shapes := make([][]int64, len(wrt))
	point[0], shapes[0] = flatten(randomTensor(rng, inShape, 1)), inShape
	if len(wrt) > 1 {
		vals, err := sess.Run(map[tf.Output]*tf.Tensor{x: mustTensor(point[0], inShape)}, wrt[1:], nil)
		if err != nil {
			return GradCheck{}, err
		}
		for i, v := range vals {
			point[i+1], shapes[i+1] = flatten(v), v.Shape()
		}
	}
	feed := func(delta float64, dir [][]float32) map[tf.Output]*tf.Tensor {
		m := map[tf.Output]*tf.Tensor{}
		for i, w := range wrt {
			p := make([]float32, len(point[i]))
			for j := range p {
				p[j] = point[i][j] + float32(delta)*dir[i][j]
			}
			m[w] = mustTensor(p, shapes[i])
		}
		return m
	}
	zero := make([][]float32, len(wrt))
	for i := range zero {
		zero[i] = make([]float32, len(point[i]))
	}
	out, err := sess.Run(feed(0, zero), grads, nil)
	if err != nil {
		return GradCheck{}, fmt.Errorf("gradients: %w", err)
	}
	// ReLU outputs reveal a kink crossed between the two evaluation points:
	// a finite difference across a kink is wrong whatever the gradient, so
	// such a direction is discarded and another drawn.
	var relus []tf.Output
	for _, o := range g.Operations() {
		if o.Type() == "Relu" {
			relus = append(relus, o.Output(0))
		}
	}
	lossAndRelus := append([]tf.Output{loss}, relus...)
	res := GradCheck{Params: len(wrt) - 1}
	for attempt := 0; len(res.Analytic) < directions; attempt++ {
		if attempt >= 10*directions {
			return res, fmt.Errorf("%d of %d random directions crossed a ReLU kink: use a smaller eps", res.Discarded, attempt)
		}
		// A unit-length random direction: eps is then the step length.
		dir := make([][]float32, len(wrt))
		norm := 0.0
		for i := range wrt {
			dir[i] = make([]float32, len(point[i]))
			for j := range dir[i] {
				dir[i][j] = float32(rng.NormFloat64())
				norm += float64(dir[i][j]) * float64(dir[i][j])
			}
		}
		ana := 0.0
		for i := range wrt {
			gi := flatten(out[i])
			for j := range dir[i] {
				dir[i][j] /= float32(math.Sqrt(norm))
				ana += float64(gi[j]) * float64(dir[i][j])
			}
		}
		lp, err := sess.Run(feed(eps, dir), lossAndRelus, nil)
		if err != nil {
			return GradCheck{}, err
		}
		lm, err := sess.Run(feed(-eps, dir), lossAndRelus, nil)
		if err != nil {
			return GradCheck{}, err
		}
		if crossed(lp[1:], lm[1:]) {
			res.Discarded++
			continue
		}
		num := (float64(lp[0].Value().(float32)) - float64(lm[0].Value().(float32))) / (2 * eps)
		res.Analytic = append(res.Analytic, ana)
		res.Numeric = append(res.Numeric, num)
	}
	return res, nil
}

// crossed reports whether any ReLU output is positive at one point and zero
// at the other.
func crossed(a, b []*tf.Tensor) bool {
	for i := range a {
		va, vb := flatten(a[i]), flatten(b[i])
		for j := range va {
			if (va[j] > 0) != (vb[j] > 0) {
				return true
			}
		}
	}
	return false
}

func seq(n int) []int32 {
	s := make([]int32, n)
	for i := range s {
		s[i] = int32(i)
	}
	return s
}

// randomTensor returns a float32 tensor of N(0, std²) values.
func randomTensor(rng *rand.Rand, shape []int64, std float64) *tf.Tensor {
	n := int64(1)
	for _, d := range shape {
		n *= d
	}
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(rng.NormFloat64() * std)
	}
	return mustTensor(v, shape)
}

func mustTensor(v []float32, shape []int64) *tf.Tensor {
	t, err := tfops.Float32Tensor(v, shape)
	if err != nil {
		panic(err) // shapes are computed here, a mismatch is a bug in this file
	}
	return t
}

func flatten(t *tf.Tensor) []float32 {
	v, err := tfops.Float32s(t)
	if err != nil {
		panic(err)
	}
	return v
}

// Tolerance is the relative error allowed between analytic and numeric
// directional derivatives in float32 with a step of 1e-2 along a unit
// direction: rounding in the two loss evaluations contributes about 1e-4 and
// kinks are excluded, so 1e-2 passes correct gradients and catches a wrong
// term, sign or scale.
const Tolerance = 1e-2
