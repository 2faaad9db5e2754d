package runs

import (
	"fmt"
	"math"
	"strings"
)

// Optimizer names accepted by OptimizerConfig.Name.
const (
	OptimizerAdam  = "adam"  // torch.optim.Adam: L2 weight decay coupled into the gradient
	OptimizerAdamW = "adamw" // torch.optim.AdamW: decoupled weight decay
	OptimizerSGD   = "sgd"   // torch.optim.SGD with optional momentum
)

// OptimizerNames returns the names OptimizerConfig.Name accepts (each one
// built by graphs.ApplyGradients).
func OptimizerNames() []string { return []string{OptimizerAdam, OptimizerAdamW, OptimizerSGD} }

// Default hyper-parameters, PyTorch's: what zero Beta1, Beta2 and Epsilon
// of an OptimizerConfig stand for.
const (
	DefaultBeta1   = 0.9
	DefaultBeta2   = 0.999
	DefaultEpsilon = 1e-8
)

// OptimizerConfig selects an optimizer and its hyper-parameters. Zero values
// of Beta1, Beta2 and Epsilon mean PyTorch's defaults. The learning rate is
// not here: it is a tensor fed every step (see Schedule and
// graphs.ApplyGradients).
type OptimizerConfig struct {
	Name          string  `json:"name"`                       // "adam", "adamw" or "sgd"
	Beta1         float64 `json:"beta1,omitempty"`            // adam, adamw; 0 → 0.9
	Beta2         float64 `json:"beta2,omitempty"`            // adam, adamw; 0 → 0.999
	Epsilon       float64 `json:"epsilon,omitempty"`          // adam, adamw; 0 → 1e-8
	Momentum      float64 `json:"momentum,omitempty"`         // sgd; 0 → plain SGD (no slot)
	WeightDecay   float64 `json:"weight_decay"`               // λ: coupled (adam, sgd) or decoupled (adamw)
	NoDecayBNBias bool    `json:"no_decay_bn_bias,omitempty"` // decay only tfops.RoleKernel variables
	ClipNorm      float64 `json:"clip_norm,omitempty"`        // > 0: clip gradients by global norm first
}

// ParseOptimizer checks an optimizer name.
func ParseOptimizer(name string) error {
	for _, n := range OptimizerNames() {
		if name == n {
			return nil
		}
	}
	return fmt.Errorf("unknown optimizer %q: choose one of %s", name, strings.Join(OptimizerNames(), ", "))
}

// WithDefaults returns c with zero Beta1, Beta2 and Epsilon replaced by
// PyTorch's defaults.
func (c OptimizerConfig) WithDefaults() OptimizerConfig {
	if c.Beta1 == 0 {
		c.Beta1 = DefaultBeta1
	}
	if c.Beta2 == 0 {
		c.Beta2 = DefaultBeta2
	}
	if c.Epsilon == 0 {
		c.Epsilon = DefaultEpsilon
	}
	return c
}

// Validate checks the name and the ranges of the hyper-parameters (after
// defaults). Parameters another optimizer would use are ignored, so one
// config can carry them all.
func (c OptimizerConfig) Validate() error {
	if err := ParseOptimizer(c.Name); err != nil {
		return err
	}
	c = c.WithDefaults()
	// Written as !(in range) so that NaN fails too.
	switch {
	case !(c.Beta1 >= 0 && c.Beta1 < 1):
		return fmt.Errorf("optimizer beta1 must be in [0, 1), got %v", c.Beta1)
	case !(c.Beta2 >= 0 && c.Beta2 < 1):
		return fmt.Errorf("optimizer beta2 must be in [0, 1), got %v", c.Beta2)
	case !(c.Epsilon > 0) || math.IsInf(c.Epsilon, 0):
		return fmt.Errorf("optimizer epsilon must be positive, got %v", c.Epsilon)
	case !(c.Momentum >= 0 && c.Momentum < 1):
		return fmt.Errorf("sgd momentum must be in [0, 1), got %v", c.Momentum)
	case !(c.WeightDecay >= 0) || math.IsInf(c.WeightDecay, 0):
		return fmt.Errorf("weight decay must be a non-negative number, got %v", c.WeightDecay)
	case !(c.ClipNorm >= 0) || math.IsInf(c.ClipNorm, 0):
		return fmt.Errorf("gradient clip norm must be a non-negative number (0: no clipping), got %v", c.ClipNorm)
	}
	return nil
}
