package graphs_test

import (
	"encoding/json"
	"math"
	"os/exec"
	"strings"
	"testing"

	tf "github.com/galeone/tensorflow/tensorflow/go"
	"github.com/galeone/tensorflow/tensorflow/go/op"

	"github.com/kfash-tf/kfash-tf/graphs"
	"github.com/kfash-tf/kfash-tf/graphs/runs"
	"github.com/kfash-tf/kfash-tf/tfops"
)

// optVar describes one variable of an optimizer fixture.
type optVar struct {
	name string
	role tfops.Role
	w0   []float64 // initial value; the shape is [len(w0)]
}

// optFixture is a graph holding variables whose gradients are fed through
// placeholders, and the update ApplyGradients adds for them.
type optFixture struct {
	t      *testing.T
	store  *tfops.Store
	vars   []*tfops.Variable
	grads  []tf.Output
	lr     tf.Output
	apply  *tf.Operation
	sess   *tf.Session
	reads  map[string]tf.Output // variable or slot name → its value
	setter map[string]optSetter
}

type optSetter struct {
	value tf.Output
	op    *tf.Operation
}

// newOptFixture builds the graph, opens a session, initialises every
// variable and sets each to its w0.
func newOptFixture(t *testing.T, cfg runs.OptimizerConfig, specs []optVar) *optFixture {
	t.Helper()
	g := tf.NewGraph()
	root := op.NewScopeWithGraph(g)
	f := &optFixture{t: t, store: tfops.NewStore(root.SubScope("vars"), 1), reads: map[string]tf.Output{}, setter: map[string]optSetter{}}
	for _, sp := range specs {
		v := f.store.Get(sp.name, []int64{int64(len(sp.w0))}, sp.role, tfops.Constant(0))
		f.vars = append(f.vars, v)
		f.grads = append(f.grads, op.Placeholder(root.SubScope("grad"), tf.Float, op.PlaceholderShape(tf.MakeShape(v.Shape...))))
	}
	f.lr = op.Placeholder(root.SubScope("lr"), tf.Float, op.PlaceholderShape(tf.ScalarShape()))
	apply, err := graphs.ApplyGradients(root.SubScope("optimizer"), f.store, cfg, f.vars, f.grads, f.lr)
	if err != nil {
		t.Fatal(err)
	}
	f.apply = apply
	probe := root.SubScope("probe")
	for _, v := range f.store.Variables() {
		f.reads[v.Name] = op.ReadVariableOp(probe.SubScope("read"), v.Handle, tf.Float)
		value := op.Placeholder(probe.SubScope("value"), tf.Float)
		f.setter[v.Name] = optSetter{value, op.AssignVariableOp(probe.SubScope("set"), v.Handle, value)}
	}
	if err := root.Err(); err != nil {
		t.Fatal(err)
	}
	if f.sess, err = graphs.NewSession(g, runs.SessionConfig{IntraOpThreads: 1, InterOpThreads: 1}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.sess.Close() })
	if _, err := f.sess.Run(nil, nil, f.store.InitOps()); err != nil {
		t.Fatal(err)
	}
	for _, sp := range specs {
		f.set(sp.name, sp.w0)
	}
	return f
}

func (f *optFixture) set(name string, v []float64) {
	f.t.Helper()
	s := f.setter[name]
	if _, err := f.sess.Run(map[tf.Output]*tf.Tensor{s.value: f32Tensor(f.t, v)}, nil, []*tf.Operation{s.op}); err != nil {
		f.t.Fatal(err)
	}
}

// step runs one optimizer step with the given gradients (one per variable).
func (f *optFixture) step(lr float64, grads ...[]float64) {
	f.t.Helper()
	feeds := map[tf.Output]*tf.Tensor{f.lr: scalarTensor(f.t, float32(lr))}
	for i, g := range grads {
		feeds[f.grads[i]] = f32Tensor(f.t, g)
	}
	if _, err := f.sess.Run(feeds, nil, []*tf.Operation{f.apply}); err != nil {
		f.t.Fatal(err)
	}
}

// value returns a variable's or slot's value; it fails the test if absent.
func (f *optFixture) value(name string) []float64 {
	f.t.Helper()
	r, ok := f.reads[name]
	if !ok {
		f.t.Fatalf("no variable %s in the store", name)
	}
	out, err := f.sess.Run(nil, []tf.Output{r}, nil)
	if err != nil {
		f.t.Fatal(err)
	}
	if out[0].Shape() == nil || len(out[0].Shape()) == 0 {
		return []float64{float64(out[0].Value().(float32))}
	}
	vals, err := tfops.Float32s(out[0])
	if err != nil {
		f.t.Fatal(err)
	}
	return float64s(vals)
}

func f32Tensor(t *testing.T, v []float64) *tf.Tensor {
	t.Helper()
	f := make([]float32, len(v))
	for i := range v {
		f[i] = float32(v[i])
	}
	tt, err := tfops.Float32Tensor(f, []int64{int64(len(v))})
	if err != nil {
		t.Fatal(err)
	}
	return tt
}

func scalarTensor(t *testing.T, v interface{}) *tf.Tensor {
	t.Helper()
	tt, err := tf.NewTensor(v)
	if err != nil {
		t.Fatal(err)
	}
	return tt
}

func float64s(v []float32) []float64 {
	out := make([]float64, len(v))
	for i := range v {
		out[i] = float64(v[i])
	}
	return out
}

// torchParam is the float64 reference state of one parameter: PyTorch's
// algorithms written out (torch.optim.Adam, AdamW, SGD; single-tensor path).
type torchParam struct {
	w, m, v, buf []float64
	t            int
}

func newTorchParam(w0 []float64) *torchParam {
	n := len(w0)
	return &torchParam{w: append([]float64(nil), w0...), m: make([]float64, n), v: make([]float64, n)}
}

func (p *torchParam) step(cfg runs.OptimizerConfig, decays bool, lr float64, g []float64) {
	cfg = cfg.WithDefaults()
	lambda := 0.0
	if decays {
		lambda = cfg.WeightDecay
	}
	p.t++
	switch cfg.Name {
	case runs.OptimizerSGD:
		first := p.buf == nil
		if first {
			p.buf = make([]float64, len(g))
		}
		for i := range p.w {
			d := g[i] + lambda*p.w[i]
			if cfg.Momentum != 0 {
				if first {
					p.buf[i] = d // torch.clone(d_p)
				} else {
					p.buf[i] = cfg.Momentum*p.buf[i] + d
				}
				d = p.buf[i]
			}
			p.w[i] -= lr * d
		}
	default:
		bc1 := 1 - math.Pow(cfg.Beta1, float64(p.t))
		bc2 := 1 - math.Pow(cfg.Beta2, float64(p.t))
		for i := range p.w {
			gi := g[i]
			if cfg.Name == runs.OptimizerAdamW {
				p.w[i] *= 1 - lr*lambda
			} else {
				gi += lambda * p.w[i]
			}
			p.m[i] = cfg.Beta1*p.m[i] + (1-cfg.Beta1)*gi
			p.v[i] = cfg.Beta2*p.v[i] + (1-cfg.Beta2)*gi*gi
			p.w[i] -= lr / bc1 * p.m[i] / (math.Sqrt(p.v[i])/math.Sqrt(bc2) + cfg.Epsilon)
		}
	}
}

func assertClose(t *testing.T, what string, got, want []float64, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: got %d values, want %d", what, len(got), len(want))
	}
	for i := range got {
		if d := math.Abs(got[i] - want[i]); !(d <= tol*math.Max(1, math.Abs(want[i]))) {
			t.Errorf("%s[%d] = %.9g, want %.9g (diff %.3g)", what, i, got[i], want[i], d)
		}
	}
}

// optTrajectory is a few steps of (learning rate, gradient): the learning
// rate changes between steps as a schedule would change it.
var optTrajectory = []struct {
	lr float64
	g  []float64
}{
	{0.1, []float64{0.1, -0.2, 0.3}},
	{0.05, []float64{-0.3, 0.05, 0.4}},
	{0.08, []float64{0.02, 0.7, -0.1}},
}

// Every optimizer matches its PyTorch definition in float64 to 1e-6 over one
// and several steps (moments, bias corrections, momentum buffers, decay).
func TestApplyGradientsMatchesPyTorch(t *testing.T) {
	w0 := []float64{0.5, -1.0, 2.0}
	cases := []struct {
		name   string
		cfg    runs.OptimizerConfig
		role   tfops.Role
		steps  int
		decays bool
	}{
		{"adam_1step", runs.OptimizerConfig{Name: "adam", WeightDecay: 0.1}, tfops.RoleKernel, 1, true},
		{"adam_2steps", runs.OptimizerConfig{Name: "adam", WeightDecay: 0.1}, tfops.RoleKernel, 2, true},
		{"adamw_1step", runs.OptimizerConfig{Name: "adamw", WeightDecay: 0.1}, tfops.RoleKernel, 1, true},
		{"adamw_2steps", runs.OptimizerConfig{Name: "adamw", WeightDecay: 0.1}, tfops.RoleKernel, 2, true},
		{"adam_custom_betas_3steps", runs.OptimizerConfig{Name: "adam", Beta1: 0.8, Beta2: 0.99, Epsilon: 1e-3, WeightDecay: 0.01}, tfops.RoleKernel, 3, true},
		{"adam_no_decay", runs.OptimizerConfig{Name: "adam"}, tfops.RoleKernel, 3, false},
		{"sgd_momentum_2steps", runs.OptimizerConfig{Name: "sgd", Momentum: 0.9, WeightDecay: 0.1}, tfops.RoleKernel, 2, true},
		{"sgd_momentum_3steps", runs.OptimizerConfig{Name: "sgd", Momentum: 0.5, WeightDecay: 0.05}, tfops.RoleKernel, 3, true},
		{"sgd_plain_2steps", runs.OptimizerConfig{Name: "sgd", WeightDecay: 0.05}, tfops.RoleKernel, 2, true},
		// NoDecayBNBias: biases and batch-norm parameters are not decayed,
		// kernels still are.
		{"adam_nodecay_bias", runs.OptimizerConfig{Name: "adam", WeightDecay: 0.1, NoDecayBNBias: true}, tfops.RoleBias, 2, false},
		{"adamw_nodecay_bias", runs.OptimizerConfig{Name: "adamw", WeightDecay: 0.1, NoDecayBNBias: true}, tfops.RoleBias, 2, false},
		{"sgd_nodecay_gamma", runs.OptimizerConfig{Name: "sgd", Momentum: 0.9, WeightDecay: 0.1, NoDecayBNBias: true}, tfops.RoleScale, 2, false},
		{"sgd_nodecay_kernel_still_decays", runs.OptimizerConfig{Name: "sgd", Momentum: 0.9, WeightDecay: 0.1, NoDecayBNBias: true}, tfops.RoleKernel, 2, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newOptFixture(t, c.cfg, []optVar{{"layer/w", c.role, w0}})
			ref := newTorchParam(w0)
			for k := 0; k < c.steps; k++ {
				st := optTrajectory[k]
				f.step(st.lr, st.g)
				ref.step(c.cfg, c.decays, st.lr, st.g)
			}
			assertClose(t, "w", f.value("layer/w"), ref.w, 1e-6)
			assertClose(t, "step", f.value(graphs.OptimizerStepVariable), []float64{float64(c.steps)}, 0)
			switch c.cfg.Name {
			case runs.OptimizerSGD:
				if c.cfg.Momentum > 0 {
					assertClose(t, "momentum", f.value(graphs.SlotName("layer/w", "momentum")), ref.buf, 1e-6)
				} else if f.store.Lookup(graphs.SlotName("layer/w", "momentum")) != nil {
					t.Error("plain SGD created a momentum slot")
				}
			default:
				assertClose(t, "m", f.value(graphs.SlotName("layer/w", "m")), ref.m, 1e-6)
				assertClose(t, "v", f.value(graphs.SlotName("layer/w", "v")), ref.v, 1e-6)
			}
		})
	}
}

// One step of adam and adamw against numbers worked out by hand (in float64
// Python): coupled and decoupled decay give visibly different weights.
func TestAdamVersusAdamWByHand(t *testing.T) {
	w0, g := []float64{0.5, -1.0, 2.0}, []float64{0.1, -0.2, 0.3}
	// After one step m̂ = g', v̂ = g'², so w ← w' − lr·g'/(|g'|+ε):
	// adam:  g' = g + 0.1·w, w' = w;  adamw: g' = g, w' = w·(1 − 0.1·0.1).
	want := map[string][]float64{
		"adam":  {0.40000000666666624, -0.9000000033333332, 1.900000002},
		"adamw": {0.395000009999999, -0.8900000049999998, 1.8800000033333333},
	}
	for name, w := range want {
		f := newOptFixture(t, runs.OptimizerConfig{Name: name, WeightDecay: 0.1}, []optVar{{"w", tfops.RoleKernel, w0}})
		f.step(0.1, g)
		assertClose(t, name, f.value("w"), w, 1e-6)
	}
}

// SGD with momentum over two steps against a hand computation.
func TestSGDMomentumByHand(t *testing.T) {
	f := newOptFixture(t, runs.OptimizerConfig{Name: "sgd", Momentum: 0.9, WeightDecay: 0.1}, []optVar{{"w", tfops.RoleKernel, []float64{0.5, -1.0, 2.0}}})
	f.step(0.1, []float64{0.1, -0.2, 0.3})
	f.step(0.05, []float64{-0.3, 0.05, 0.4})
	assertClose(t, "w", f.value("w"), []float64{0.490825, -0.95415, 1.89775}, 1e-6)
	assertClose(t, "momentum", f.value(graphs.SlotName("w", "momentum")), []float64{-0.1165, -0.317, 1.045}, 1e-6)
}

// Clipping by global norm scales all gradients together by
// min(1, clip/(‖g‖+1e-6)) (PyTorch's clip_grad_norm_), and leaves gradients
// below the norm alone.
func TestClipByGlobalNorm(t *testing.T) {
	// Two variables whose gradients have a joint norm of 10.
	ga, gb := []float64{6, 0}, []float64{0, 8}
	cases := []struct {
		name  string
		clip  float64
		scale float64
	}{
		{"norm10_to_1", 1, 1 / (10 + 1e-6)},
		{"norm10_to_2.5", 2.5, 2.5 / (10 + 1e-6)},
		{"below_clip_unchanged", 20, 1},
		{"no_clipping", 0, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := runs.OptimizerConfig{Name: "sgd", ClipNorm: c.clip}
			f := newOptFixture(t, cfg, []optVar{{"a", tfops.RoleKernel, []float64{0, 0}}, {"b", tfops.RoleBias, []float64{0, 0}}})
			f.step(1, ga, gb) // plain SGD, lr 1: w = −(clipped g)
			a, b := f.value("a"), f.value("b")
			assertClose(t, "a", a, []float64{-6 * c.scale, 0}, 1e-6)
			assertClose(t, "b", b, []float64{0, -8 * c.scale}, 1e-6)
			norm := math.Sqrt(a[0]*a[0] + b[1]*b[1])
			t.Logf("update norm %.7f", norm)
			if c.clip == 1 && math.Abs(norm-1) > 1e-5 {
				t.Errorf("clipped update norm %v, want 1", norm)
			}
		})
	}
}

// The update waits for the forward and backward passes: fetching the loss in
// the step that updates the weights gives the loss of the weights before it.
func TestApplyGradientsAfterForwardPass(t *testing.T) {
	g := tf.NewGraph()
	root := op.NewScopeWithGraph(g)
	store := tfops.NewStore(root.SubScope("vars"), 1)
	v := store.Get("w", []int64{4}, tfops.RoleKernel, tfops.Constant(1))
	read := op.ReadVariableOp(root.SubScope("forward"), v.Handle, tf.Float)
	// loss = Σ w²/2, so dloss/dw = w: the gradient depends on the read.
	loss := op.L2Loss(root.SubScope("loss"), read)
	lr := op.Placeholder(root.SubScope("lr"), tf.Float, op.PlaceholderShape(tf.ScalarShape()))
	if err := root.Err(); err != nil {
		t.Fatal(err)
	}
	grads, err := g.AddGradients("gradients", []tf.Output{loss}, []tf.Output{read}, nil)
	if err != nil {
		t.Fatal(err)
	}
	apply, err := graphs.ApplyGradients(root.SubScope("optimizer"), store, runs.OptimizerConfig{Name: "sgd"}, []*tfops.Variable{v}, grads, lr)
	if err != nil {
		t.Fatal(err)
	}
	sess, err := graphs.NewSession(g, runs.SessionConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	if _, err := sess.Run(nil, nil, store.InitOps()); err != nil {
		t.Fatal(err)
	}
	// w ← 0.5·w each step, so the loss (4·w²/2) is 2, 0.5, 0.125, ...
	want := 2.0
	for k := 0; k < 20; k++ {
		out, err := sess.Run(map[tf.Output]*tf.Tensor{lr: scalarTensor(t, float32(0.5))}, []tf.Output{loss}, []*tf.Operation{apply})
		if err != nil {
			t.Fatal(err)
		}
		if got := float64(out[0].Value().(float32)); math.Abs(got-want) > 1e-6*want {
			t.Fatalf("step %d: loss %v, want %v (read after the update?)", k, got, want)
		}
		want /= 4
	}
}

// ApplyGradients refuses arguments that would build a wrong update.
func TestApplyGradientsArgumentErrors(t *testing.T) {
	cases := []struct {
		name  string
		build func(s *op.Scope, store *tfops.Store, lr tf.Output) ([]*tfops.Variable, []tf.Output, tf.Output)
		want  string
	}{
		{"length_mismatch", func(s *op.Scope, store *tfops.Store, lr tf.Output) ([]*tfops.Variable, []tf.Output, tf.Output) {
			return []*tfops.Variable{store.Get("w", []int64{2}, tfops.RoleKernel, tfops.Constant(0))}, nil, lr
		}, "1 variables but 0 gradients"},
		{"not_trainable", func(s *op.Scope, store *tfops.Store, lr tf.Output) ([]*tfops.Variable, []tf.Output, tf.Output) {
			v := store.NewState("counter", []int64{2}, 0)
			return []*tfops.Variable{v}, []tf.Output{op.Const(s.SubScope("g"), []float32{1, 1})}, lr
		}, "counter (state) is not trainable"},
		{"missing_gradient", func(s *op.Scope, store *tfops.Store, lr tf.Output) ([]*tfops.Variable, []tf.Output, tf.Output) {
			return []*tfops.Variable{store.Get("w", []int64{2}, tfops.RoleKernel, tfops.Constant(0))}, []tf.Output{{}}, lr
		}, "w has no gradient"},
		{"gradient_shape", func(s *op.Scope, store *tfops.Store, lr tf.Output) ([]*tfops.Variable, []tf.Output, tf.Output) {
			return []*tfops.Variable{store.Get("w", []int64{2}, tfops.RoleKernel, tfops.Constant(0))}, []tf.Output{op.Const(s.SubScope("g"), []float32{1, 1, 1})}, lr
		}, "gradient of w has shape [3]"},
		{"twice", func(s *op.Scope, store *tfops.Store, lr tf.Output) ([]*tfops.Variable, []tf.Output, tf.Output) {
			v := store.Get("w", []int64{2}, tfops.RoleKernel, tfops.Constant(0))
			g := op.Const(s.SubScope("g"), []float32{1, 1})
			return []*tfops.Variable{v, v}, []tf.Output{g, g}, lr
		}, "w is listed twice"},
		{"lr_not_scalar", func(s *op.Scope, store *tfops.Store, lr tf.Output) ([]*tfops.Variable, []tf.Output, tf.Output) {
			return nil, nil, op.Const(s.SubScope("lr_vec"), []float32{1, 2})
		}, "must be a scalar"},
		{"lr_double", func(s *op.Scope, store *tfops.Store, lr tf.Output) ([]*tfops.Variable, []tf.Output, tf.Output) {
			return nil, nil, op.Const(s.SubScope("lr64"), 0.1)
		}, "float32 scalar"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			root := op.NewScope()
			store := tfops.NewStore(root.SubScope("vars"), 1)
			lr := op.Placeholder(root.SubScope("lr"), tf.Float, op.PlaceholderShape(tf.ScalarShape()))
			vars, grads, lr := c.build(root, store, lr)
			_, err := graphs.ApplyGradients(root.SubScope("optimizer"), store, runs.OptimizerConfig{Name: "adam"}, vars, grads, lr)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one containing %q", err, c.want)
			}
		})
	}
}

// The optimizers against torch itself, where PyTorch is installed (it is not
// a test dependency: the test skips without it).
func TestApplyGradientsAgainstTorch(t *testing.T) {
	if err := exec.Command("python3", "-c", "import torch").Run(); err != nil {
		t.Skip("python3 with torch not available")
	}
	const script = `
import json, sys, torch
torch.set_default_dtype(torch.float64)
req = json.load(sys.stdin)
out = {}
for c in req["cases"]:
    w = torch.nn.Parameter(torch.tensor(req["w0"]))
    cls = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "sgd": torch.optim.SGD}[c["name"]]
    kw = {"lr": 1.0, "weight_decay": c["weight_decay"]}
    if c["name"] == "sgd":
        kw["momentum"] = c["momentum"]
    opt = cls([w], **kw)
    for s in req["steps"]:
        for g in opt.param_groups:
            g["lr"] = s["lr"]
        w.grad = torch.tensor(s["g"])
        opt.step()
    out[c["key"]] = w.detach().tolist()
json.dump(out, sys.stdout)
`
	type torchCase struct {
		Key         string  `json:"key"`
		Name        string  `json:"name"`
		WeightDecay float64 `json:"weight_decay"`
		Momentum    float64 `json:"momentum"`
	}
	type torchStep struct {
		LR float64   `json:"lr"`
		G  []float64 `json:"g"`
	}
	w0 := []float64{0.5, -1.0, 2.0}
	req := struct {
		W0    []float64   `json:"w0"`
		Steps []torchStep `json:"steps"`
		Cases []torchCase `json:"cases"`
	}{W0: w0, Cases: []torchCase{
		{"adam", "adam", 0.1, 0}, {"adamw", "adamw", 0.1, 0}, {"sgd", "sgd", 0.1, 0.9},
	}}
	for _, s := range optTrajectory {
		req.Steps = append(req.Steps, torchStep{s.lr, s.g})
	}
	in, _ := json.Marshal(req)
	cmd := exec.Command("python3", "-c", script)
	cmd.Stdin = strings.NewReader(string(in))
	data, err := cmd.Output()
	if err != nil {
		t.Fatalf("torch: %v", err)
	}
	var want map[string][]float64
	if err := json.Unmarshal(data, &want); err != nil {
		t.Fatal(err)
	}
	for _, c := range req.Cases {
		cfg := runs.OptimizerConfig{Name: c.Name, WeightDecay: c.WeightDecay, Momentum: c.Momentum}
		f := newOptFixture(t, cfg, []optVar{{"w", tfops.RoleKernel, w0}})
		for _, s := range optTrajectory {
			f.step(s.lr, s.g)
		}
		assertClose(t, c.Key, f.value("w"), want[c.Key], 1e-6)
	}
}
