package graphs

import (
	"fmt"
	"math"
	"math/rand"
	"testing"

	tf "github.com/galeone/tensorflow/tensorflow/go"
	"github.com/galeone/tensorflow/tensorflow/go/op"

	"github.com/kfash-tf/kfash-tf/tfops"
	"github.com/kfash-tf/kfash-tf/tfops/tfopstest"
)

// The gradient check runs on a small network rather than on a study
// network at random init: there the feature map's entries are ~1e-3, the
// directional derivatives ~1e-2, and float32 rounding of the logits plus
// max-pool near-ties (a kink the ReLU test cannot see) put the finite
// differences off by tens of percent whatever the gradient. Here the
// activations are O(1), nothing after the feature map but a ReLU is
// non-linear, and that ReLU's sign pattern is watched for crossed kinks.

// camFixture is Grad-CAM over conv1 of conv(4)→ReLU→conv(6)→ReLU→GAP→dense(3)
// on two 8×8 images, with the session and the fetched values at one point.
type camFixture struct {
	sess    *tf.Session
	feeds   map[tf.Output]*tf.Tensor // images and targets
	cam     *GradCAM
	kinks   tf.Output // the one ReLU after the feature map
	shape   []int64   // the feature map's
	feature []float32
	grad    []float32
	weights []float32
	raw     []float32
	maps    []float32
}

func newCAMFixture(t *testing.T, targets []int32) *camFixture {
	t.Helper()
	const n, s = 2, 8
	g := tf.NewGraph()
	root := op.NewScopeWithGraph(g)
	store := tfops.NewStore(root.SubScope("vars"), 11)
	x := op.Placeholder(root.SubScope("x"), tf.Float, op.PlaceholderShape(tf.MakeShape(-1, s, s, 3)))
	net := tfops.NewNet(root.SubScope("net"), store, tfops.Inference)
	h := net.ReLU(net.Conv2D("conv1", x, tfops.Conv{Filters: 4, Kernel: 3, Pad: 1, Bias: true, Init: tfops.HeFanOut}))
	conv1, _ := net.LayerOutput("conv1")
	h2 := net.ReLU(net.Conv2D("conv2", h, tfops.Conv{Filters: 6, Kernel: 3, Pad: 1, Bias: true, Init: tfops.HeFanOut}))
	logits := net.Dense("fc", net.GlobalAvgPool("gap", h2), 3)
	cam, err := BuildGradCAM(g, root.SubScope("explain"), FeatureMapAfter(conv1), logits, s)
	if err != nil {
		t.Fatal(err)
	}
	if cam.Feature.Op.Name() != h.Op.Name() {
		t.Fatalf("FeatureMapAfter(conv1) = %v, want the ReLU after it", cam.Feature.Op.Type())
	}
	f := &camFixture{cam: cam, kinks: h2}
	if f.sess, err = tf.NewSession(g, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.sess.Close() })
	if _, err := f.sess.Run(nil, nil, store.InitOps()); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewSource(3))
	imgs := make([]float32, n*s*s*3)
	for i := range imgs {
		imgs[i] = float32(rng.NormFloat64())
	}
	xt, err := tfops.Float32Tensor(imgs, []int64{n, s, s, 3})
	if err != nil {
		t.Fatal(err)
	}
	tt, err := tf.NewTensor(targets)
	if err != nil {
		t.Fatal(err)
	}
	f.feeds = map[tf.Output]*tf.Tensor{x: xt, cam.Target: tt}
	out, err := f.sess.Run(f.feeds, []tf.Output{cam.Feature, cam.Gradient, cam.Weights, cam.Raw, cam.Map}, nil)
	if err != nil {
		t.Fatal(err)
	}
	f.shape = out[0].Shape()
	vals := make([][]float32, len(out))
	for i, o := range out {
		if vals[i], err = tfops.Float32s(o); err != nil {
			t.Fatal(err)
		}
	}
	f.feature, f.grad, f.weights, f.raw, f.maps = vals[0], vals[1], vals[2], vals[3], vals[4]
	return f
}

// score is Score with the feature map fed as feature + step·dir, and
// the output of the ReLU after it (whose signs reveal a crossed kink).
func (f *camFixture) score(t *testing.T, dir []float32, step float64) (float64, []float32) {
	t.Helper()
	p := make([]float32, len(f.feature))
	for i := range p {
		p[i] = f.feature[i] + float32(step)*dir[i]
	}
	ft, err := tfops.Float32Tensor(p, f.shape)
	if err != nil {
		t.Fatal(err)
	}
	feeds := map[tf.Output]*tf.Tensor{f.cam.Feature: ft}
	for k, v := range f.feeds {
		feeds[k] = v
	}
	o, err := f.sess.Run(feeds, []tf.Output{f.cam.Score, f.kinks}, nil)
	if err != nil {
		t.Fatal(err)
	}
	relu, err := tfops.Float32s(o[1])
	if err != nil {
		t.Fatal(err)
	}
	return float64(o[0].Value().(float32)), relu
}

// gradientCheck compares grad (claimed ∂Score/∂Feature) with central
// differences of Score along random directions of the feature map.
// Score is piecewise linear in the feature map here, so a difference is
// exact up to float32 rounding unless the step crossed a ReLU kink; those
// directions are dropped and others drawn.
func (f *camFixture) gradientCheck(t *testing.T, grad []float32, directions int, eps float64) (tfopstest.GradCheck, error) {
	t.Helper()
	rng := rand.New(rand.NewSource(7))
	_, at := f.score(t, make([]float32, len(f.feature)), 0)
	var res tfopstest.GradCheck
	for len(res.Analytic) < directions {
		if res.Discarded > 10*directions {
			return res, fmt.Errorf("%d directions crossed a kink: use a smaller eps", res.Discarded)
		}
		// Entries N(0,1), not a unit vector: the derivative is then the
		// gradient's norm in size, well above rounding.
		dir := make([]float32, len(f.feature))
		ana := 0.0
		for i := range dir {
			dir[i] = float32(rng.NormFloat64())
			ana += float64(dir[i]) * float64(grad[i])
		}
		plus, rp := f.score(t, dir, eps)
		minus, rm := f.score(t, dir, -eps)
		if signsDiffer(at, rp) || signsDiffer(at, rm) {
			res.Discarded++
			continue
		}
		res.Analytic = append(res.Analytic, ana)
		res.Numeric = append(res.Numeric, (plus-minus)/(2*eps))
	}
	return res, nil
}

// relErr is the largest |analytic − numeric| / max(|analytic|, |numeric|):
// unlike GradCheck.MaxRelErr it has no absolute floor, so derivatives too
// small to rise above rounding fail the check instead of passing it.
func relErr(c tfopstest.GradCheck) float64 {
	worst := 0.0
	for i := range c.Analytic {
		a, n := c.Analytic[i], c.Numeric[i]
		worst = math.Max(worst, math.Abs(a-n)/math.Max(math.Max(math.Abs(a), math.Abs(n)), 1e-30))
	}
	return worst
}

func signsDiffer(a, b []float32) bool {
	for i := range a {
		if (a[i] > 0) != (b[i] > 0) {
			return true
		}
	}
	return false
}

// mapError is the largest error of weights (claimed: grad's mean over h×w)
// and raw (claimed: ReLU(Σ_c w_c·A_c)) against a float64 recomputation
// from the feature map and grad, relative to each quantity's largest magnitude.
func (f *camFixture) mapError(grad, weights, raw []float32) float64 {
	n, hw, c := int(f.shape[0]), int(f.shape[1]*f.shape[2]), int(f.shape[3])
	var wErr, wMax, rErr, rMax float64
	for b := 0; b < n; b++ {
		w := make([]float64, c)
		for k := 0; k < c; k++ {
			for p := 0; p < hw; p++ {
				w[k] += float64(grad[(b*hw+p)*c+k]) / float64(hw)
			}
			wErr = math.Max(wErr, math.Abs(w[k]-float64(weights[b*c+k])))
			wMax = math.Max(wMax, math.Abs(w[k]))
		}
		for p := 0; p < hw; p++ {
			v := 0.0
			for k := 0; k < c; k++ {
				v += w[k] * float64(f.feature[(b*hw+p)*c+k])
			}
			v = math.Max(v, 0)
			rErr = math.Max(rErr, math.Abs(v-float64(raw[b*hw+p])))
			rMax = math.Max(rMax, v)
		}
	}
	return math.Max(wErr/math.Max(wMax, 1e-12), rErr/math.Max(rMax, 1e-12))
}

// Gradient check of the Grad-CAM graph against finite differences for one
// network: ∂(target logit)/∂(feature map) against central differences with
// the feature map fed directly, the channel weights and the map against a
// float64 recomputation; and the check itself fails a gradient of the
// wrong sign or class and a sum where the mean belongs.
func TestExplainGradientCheck(t *testing.T) {
	const directions, eps = 12, 1e-3
	f := newCAMFixture(t, []int32{0, 2})
	check, err := f.gradientCheck(t, f.grad, directions, eps)
	if err != nil {
		t.Fatal(err)
	}
	gradErr, mapErr := relErr(check), f.mapError(f.grad, f.weights, f.raw)
	t.Logf("feature %v; directional derivatives analytic %.5g, numeric %.5g; max rel err %.2g (%d discarded); weights/map err %.2g",
		f.shape, check.Analytic[:3], check.Numeric[:3], gradErr, check.Discarded, mapErr)
	if gradErr > tfopstest.Tolerance {
		t.Errorf("gradient: max relative error %.3g > %g", gradErr, tfopstest.Tolerance)
	}
	if mapErr > 1e-5 {
		t.Errorf("weights or map differ from the float64 recomputation by %.3g (relative)", mapErr)
	}
	// The map spans [0,1], or is all 0 where Raw is (no positive evidence).
	hw := int(f.shape[1] * f.shape[2])
	for b := 0; b < int(f.shape[0]); b++ {
		lo, hi, rawMax := float32(1), float32(0), float32(0)
		for _, v := range f.maps[b*64 : (b+1)*64] {
			lo, hi = min(lo, v), max(hi, v)
		}
		for _, v := range f.raw[b*hw : (b+1)*hw] {
			rawMax = max(rawMax, v)
		}
		want := float32(1)
		if rawMax == 0 {
			want = 0
		}
		if lo != 0 || math.Abs(float64(hi-want)) > 1e-6 {
			t.Errorf("image %d: map range [%g,%g], want [0,%g]", b, lo, hi, want)
		}
	}

	// The check must fail wrong gradients. A sign flip:
	flipped := make([]float32, len(f.grad))
	for i, v := range f.grad {
		flipped[i] = -v
	}
	// The gradient of another class (targets 1,1 instead of 0,2):
	other := newCAMFixture(t, []int32{1, 1}).grad
	for _, m := range []struct {
		name string
		grad []float32
	}{{"sign flip", flipped}, {"other class", other}} {
		c, err := f.gradientCheck(t, m.grad, directions, eps)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("mutant %s: max rel err %.2g", m.name, relErr(c))
		if relErr(c) <= tfopstest.Tolerance {
			t.Errorf("mutant %s passes the gradient check (max rel err %.3g)", m.name, relErr(c))
		}
	}
	// A sum over h×w where the mean belongs, and the weights of the other
	// class:
	summed := make([]float32, len(f.weights))
	for i, v := range f.weights {
		summed[i] = v * float32(hw)
	}
	for _, m := range []struct {
		name    string
		weights []float32
	}{{"sum, not mean", summed}, {"other class", newCAMFixture(t, []int32{1, 1}).weights}} {
		e := f.mapError(f.grad, m.weights, f.raw)
		t.Logf("mutant %s: weights/map err %.2g", m.name, e)
		if e <= 1e-5 {
			t.Errorf("mutant %s passes the map check (err %.3g)", m.name, e)
		}
	}
}
