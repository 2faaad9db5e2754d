package graphs

import (
	"fmt"

	tf "github.com/galeone/tensorflow/tensorflow/go"
	"github.com/galeone/tensorflow/tensorflow/go/op"

	"github.com/kfash-tf/kfash-tf/graphs/runs"
	"github.com/kfash-tf/kfash-tf/tfops"
)

// OptimizerStepVariable is the store name of the step counter shared by all
// slots. It counts optimizer steps taken (Adam's t) and, like the slots, is
// a RoleState variable, so a checkpoint of the store's variables holds it.
const OptimizerStepVariable = "optimizer/step"

// SlotName returns the store name of an optimizer slot ("m", "v" or
// "momentum") of the variable called varName.
func SlotName(varName, slot string) string { return "optimizer/" + varName + "/" + slot }

// decays reports whether c's weight decay applies to v.
func decays(c runs.OptimizerConfig, v *tfops.Variable) bool {
	return c.WeightDecay > 0 && (!c.NoDecayBNBias || v.Role == tfops.RoleKernel)
}

// ApplyGradients adds the update of vars given their gradients (same order)
// and returns one op to run per step. lr is a float32 scalar tensor fed every
// step by the learning-rate schedule, so schedules need no graph state.
//
// The updates follow PyTorch exactly (see OptimizerAdam, OptimizerAdamW,
// OptimizerSGD); the slots are RoleState variables created in store
// (SlotName, OptimizerStepVariable), so store.InitOps must be taken after
// this call and a checkpoint of store.Variables() resumes the optimizer
// exactly. Every update is computed from values read once and assigned once:
// data dependencies order each read before its assignment, and every
// assignment waits for all gradients, so no variable changes while the
// forward or backward pass may still read it. Ops added here also inherit
// the control dependencies of s.
func ApplyGradients(s *op.Scope, store *tfops.Store, cfg runs.OptimizerConfig, vars []*tfops.Variable, grads []tf.Output, lr tf.Output) (*tf.Operation, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.WithDefaults()
	if err := checkApplyArgs(s, store, vars, grads, lr); err != nil {
		return nil, err
	}

	// One barrier instead of a control edge from every gradient to every
	// assignment: without it, a variable whose gradient is ready early could
	// be overwritten while another part of the step still reads it.
	gradOps := make([]*tf.Operation, 0, len(grads))
	seen := map[*tf.Operation]bool{}
	for _, g := range grads {
		if !seen[g.Op] {
			seen[g.Op] = true
			gradOps = append(gradOps, g.Op)
		}
	}
	barrier := op.NoOp(s.SubScope("gradients_ready").WithControlDependencies(gradOps...))
	assignScope := func(vs *op.Scope, name string) *op.Scope {
		return vs.SubScope(name).WithControlDependencies(barrier)
	}

	if cfg.ClipNorm > 0 && len(grads) > 0 {
		grads = clipByGlobalNorm(s.SubScope("clip_by_global_norm"), grads, cfg.ClipNorm)
	}

	// The step counter is float32 like every store variable: it counts
	// exactly up to 2^24 ≈ 16.7 M steps, far beyond any run here (past it,
	// t+1 rounds and Adam's bias corrections would be those of a nearby step,
	// which by then are 1 to float precision anyway).
	stepVar := store.NewState(OptimizerStepVariable, []int64{}, 0)
	ss := s.SubScope("step")
	t := op.ReadVariableOp(ss.SubScope("read"), stepVar.Handle, tf.Float)
	tNext := op.AddV2(ss.SubScope("next"), t, op.Const(ss.SubScope("one"), float32(1)))
	// Every bias correction below uses tNext computed from this one read, so
	// the increment cannot be seen twice or missed, whenever it runs.
	updates := []*tf.Operation{op.AssignVariableOp(assignScope(ss, "assign"), stepVar.Handle, tNext)}

	// Step-wide scalars in float64, as PyTorch computes them in Python:
	// bias corrections 1−βᵗ, Adam's step size and ε, and AdamW's 1−lr·λ.
	var adam adamScalars
	if cfg.Name == runs.OptimizerAdam || cfg.Name == runs.OptimizerAdamW {
		adam = newAdamScalars(s.SubScope("hyper"), cfg, lr, tNext)
	}
	f32 := func(vs *op.Scope, name string, v float64) tf.Output { return op.Const(vs.SubScope(name), float32(v)) }

	for i, v := range vars {
		vs := s.SubScope(v.Name)
		g := grads[i]
		w := op.ReadVariableOp(vs.SubScope("read"), v.Handle, tf.Float)
		if decays(cfg, v) && cfg.Name != runs.OptimizerAdamW {
			// Coupled L2 (Adam, SGD): g ← g + λ·w.
			g = op.AddV2(vs.SubScope("l2"), g, op.Mul(vs.SubScope("decay"), w, f32(vs, "weight_decay", cfg.WeightDecay)))
		}
		if cfg.Name == runs.OptimizerSGD {
			step := g
			if cfg.Momentum > 0 {
				// b ← μ·b + g from b = 0: the first step gives b = g, which is
				// PyTorch's initialisation of the buffer.
				slot := store.NewState(SlotName(v.Name, "momentum"), v.Shape, 0)
				b := op.ReadVariableOp(vs.SubScope("momentum_read"), slot.Handle, tf.Float)
				step = op.AddV2(vs.SubScope("momentum_next"), op.Mul(vs.SubScope("momentum_decay"), b, f32(vs, "mu", cfg.Momentum)), g)
				updates = append(updates, op.AssignVariableOp(assignScope(vs, "momentum_assign"), slot.Handle, step))
			}
			wNext := op.Sub(vs.SubScope("next"), w, op.Mul(vs.SubScope("lr_step"), lr, step))
			updates = append(updates, op.AssignVariableOp(assignScope(vs, "assign"), v.Handle, wNext))
			continue
		}
		// Adam, AdamW.
		mSlot := store.NewState(SlotName(v.Name, "m"), v.Shape, 0)
		vSlot := store.NewState(SlotName(v.Name, "v"), v.Shape, 0)
		as := assignScope(vs, "adam")
		if cfg.Name == runs.OptimizerAdamW && decays(cfg, v) {
			// Decoupled decay on the pre-update weights: w ← w·(1 − lr·λ),
			// then the Adam step on the decayed weights.
			decay := op.AssignVariableOp(assignScope(vs, "decay"), v.Handle, op.Mul(vs.SubScope("decayed"), w, adam.decayFactor))
			as = as.WithControlDependencies(decay)
		}
		updates = append(updates, adam.apply(as, v.Handle, mSlot.Handle, vSlot.Handle, g))
	}
	apply := op.NoOp(s.SubScope("apply").WithControlDependencies(updates...))
	if err := s.Err(); err != nil {
		return nil, fmt.Errorf("building the %s optimizer: %w", cfg.Name, err)
	}
	if err := store.Scope().Err(); err != nil {
		return nil, fmt.Errorf("creating optimizer slots: %w", err)
	}
	return apply, nil
}

// adamScalars are the step-wide inputs of ResourceApplyAdam that make it
// compute PyTorch's Adam step.
//
// TensorFlow's kernel updates m, v and w in one pass over the tensors (the
// graph of separate element-wise ops it replaces made some fifteen passes,
// each allocating a tensor the size of the variable) as
//
//	m ← m + (g − m)(1 − β1);  v ← v + (g² − v)(1 − β2)
//	w ← w − α·m / (√v + ε̂),  α = lr·√(1 − β2ᵖ) / (1 − β1ᵖ)
//
// PyTorch's w ← w − lr/(1−β1ᵗ) · m / (√v/√(1−β2ᵗ) + ε) is the same with
// α = lr·√(1−β2ᵗ)/(1−β1ᵗ) and ε̂ = ε·√(1−β2ᵗ). Both are computed here in
// float64 and the kernel's own bias correction is switched off with
// β1ᵖ = β2ᵖ = 0 (in float32, 1 − 0.999 would lose five digits).
type adamScalars struct {
	alpha, epsilon    tf.Output // float32 α and ε̂
	beta1, beta2, off tf.Output // float32 β1, β2 and 0
	decayFactor       tf.Output // AdamW with weight decay: float32 1 − lr·λ
}

func newAdamScalars(s *op.Scope, cfg runs.OptimizerConfig, lr, tNext tf.Output) adamScalars {
	var a adamScalars
	lr64 := op.Cast(s.SubScope("lr64"), lr, tf.Double)
	t64 := op.Cast(s.SubScope("t64"), tNext, tf.Double)
	one := op.Const(s.SubScope("one"), float64(1))
	bc1 := op.Sub(s.SubScope("bias_correction1"), one, op.Pow(s.SubScope("beta1_t"), op.Const(s.SubScope("beta1"), cfg.Beta1), t64))
	bc2 := op.Sub(s.SubScope("bias_correction2"), one, op.Pow(s.SubScope("beta2_t"), op.Const(s.SubScope("beta2"), cfg.Beta2), t64))
	bc2Sqrt := op.Sqrt(s.SubScope("sqrt_bc2"), bc2)
	a.alpha = op.Cast(s.SubScope("alpha"), op.Mul(s.SubScope("alpha64"), op.Div(s.SubScope("lr_over_bc1"), lr64, bc1), bc2Sqrt), tf.Float)
	a.epsilon = op.Cast(s.SubScope("epsilon_hat"), op.Mul(s.SubScope("epsilon_hat64"), op.Const(s.SubScope("epsilon"), cfg.Epsilon), bc2Sqrt), tf.Float)
	a.beta1 = op.Const(s.SubScope("beta1_f32"), float32(cfg.Beta1))
	a.beta2 = op.Const(s.SubScope("beta2_f32"), float32(cfg.Beta2))
	a.off = op.Const(s.SubScope("no_bias_correction"), float32(0))
	if cfg.Name == runs.OptimizerAdamW && cfg.WeightDecay > 0 {
		lrDecay := op.Mul(s.SubScope("lr_decay"), lr64, op.Const(s.SubScope("weight_decay"), cfg.WeightDecay))
		a.decayFactor = op.Cast(s.SubScope("decay_factor"), op.Sub(s.SubScope("one_minus_lr_decay"), one, lrDecay), tf.Float)
	}
	return a
}

// apply adds the in-place Adam update of the variable w with slots m, v.
func (a adamScalars) apply(s *op.Scope, w, m, v, g tf.Output) *tf.Operation {
	return op.ResourceApplyAdam(s, w, m, v, a.off, a.off, a.alpha, a.beta1, a.beta2, a.epsilon, g)
}

// checkApplyArgs rejects arguments ApplyGradients would turn into a broken
// graph or a cgo error far from the cause.
func checkApplyArgs(s *op.Scope, store *tfops.Store, vars []*tfops.Variable, grads []tf.Output, lr tf.Output) error {
	if s == nil || store == nil {
		return fmt.Errorf("ApplyGradients needs a scope and a store")
	}
	if err := s.Err(); err != nil {
		return err
	}
	if len(vars) != len(grads) {
		return fmt.Errorf("%d variables but %d gradients", len(vars), len(grads))
	}
	if lr.Op == nil || lr.DataType() != tf.Float {
		return fmt.Errorf("the learning rate must be a float32 scalar tensor")
	}
	if n := lr.Shape().NumDimensions(); n > 0 {
		return fmt.Errorf("the learning rate must be a scalar, got shape %v", lr.Shape())
	}
	seen := map[*tfops.Variable]bool{}
	for i, v := range vars {
		switch {
		case v == nil:
			return fmt.Errorf("variable %d is nil", i)
		case seen[v]:
			// Two updates of one variable would race and apply twice.
			return fmt.Errorf("variable %s is listed twice", v.Name)
		case !v.Trainable:
			return fmt.Errorf("variable %s (%s) is not trainable", v.Name, v.Role)
		case grads[i].Op == nil:
			return fmt.Errorf("variable %s has no gradient", v.Name)
		case grads[i].DataType() != tf.Float:
			return fmt.Errorf("gradient of %s is %v, not float32", v.Name, grads[i].DataType())
		}
		seen[v] = true
		if gs, err := grads[i].Shape().ToSlice(); err == nil && !knownShapeEqual(gs, v.Shape) {
			return fmt.Errorf("gradient of %s has shape %v, the variable %v", v.Name, gs, v.Shape)
		}
	}
	return nil
}

// knownShapeEqual compares a static shape that may have unknown (-1)
// dimensions with a fully known one.
func knownShapeEqual(static, known []int64) bool {
	if len(static) != len(known) {
		return false
	}
	for i := range static {
		if static[i] >= 0 && static[i] != known[i] {
			return false
		}
	}
	return true
}

// clipByGlobalNorm scales every gradient by min(1, clip/(‖g‖+1e-6)), with ‖g‖
// the norm of all gradients joined: torch.nn.utils.clip_grad_norm_, whose
// 1e-6 also keeps a zero gradient finite.
func clipByGlobalNorm(s *op.Scope, grads []tf.Output, clip float64) []tf.Output {
	halfSquares := make([]tf.Output, len(grads))
	for i, g := range grads {
		halfSquares[i] = op.L2Loss(s.SubScope("half_sum_squares"), g) // Σg²/2
	}
	sum := op.Mul(s.SubScope("sum_squares"), op.AddN(s.SubScope("total"), halfSquares), op.Const(s.SubScope("two"), float32(2)))
	norm := op.Sqrt(s.SubScope("global_norm"), sum)
	ratio := op.Div(s.SubScope("ratio"), op.Const(s.SubScope("clip"), float32(clip)),
		op.AddV2(s.SubScope("norm_eps"), norm, op.Const(s.SubScope("eps"), float32(1e-6))))
	coef := op.Minimum(s.SubScope("coef"), ratio, op.Const(s.SubScope("one"), float32(1)))
	out := make([]tf.Output, len(grads))
	for i, g := range grads {
		out[i] = op.Mul(s.SubScope("scaled"), g, coef)
	}
	return out
}
