package runs_test

import (
	"math"
	"strings"
	"testing"

	"github.com/kfash-tf/kfash-tf/graphs/runs"
)

// Configuration errors name what is wrong; an unknown optimizer names the
// choices.
func TestOptimizerConfigErrors(t *testing.T) {
	cases := []struct {
		cfg  runs.OptimizerConfig
		want []string
	}{
		{runs.OptimizerConfig{Name: "rmsprop"}, []string{`"rmsprop"`, "adam", "adamw", "sgd"}},
		{runs.OptimizerConfig{Name: ""}, []string{"unknown optimizer", "adam, adamw, sgd"}},
		{runs.OptimizerConfig{Name: "Adam"}, []string{"unknown optimizer"}},
		{runs.OptimizerConfig{Name: "adam", Beta1: 1}, []string{"beta1"}},
		{runs.OptimizerConfig{Name: "adam", Beta2: -0.5}, []string{"beta2"}},
		{runs.OptimizerConfig{Name: "adam", Epsilon: -1}, []string{"epsilon"}},
		{runs.OptimizerConfig{Name: "sgd", Momentum: 1.5}, []string{"momentum"}},
		{runs.OptimizerConfig{Name: "adamw", WeightDecay: -0.1}, []string{"weight decay"}},
		{runs.OptimizerConfig{Name: "adamw", WeightDecay: math.NaN()}, []string{"weight decay"}},
		{runs.OptimizerConfig{Name: "sgd", ClipNorm: math.Inf(1)}, []string{"clip"}},
	}
	for _, c := range cases {
		err := c.cfg.Validate()
		if err == nil {
			t.Errorf("%+v: no error", c.cfg)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%+v: error %q does not mention %q", c.cfg, err, w)
			}
		}
	}
	if err := runs.ParseOptimizer("lion"); err == nil || !strings.Contains(err.Error(), "adam, adamw, sgd") {
		t.Errorf("ParseOptimizer(lion) = %v", err)
	}
	for _, n := range runs.OptimizerNames() {
		if err := runs.ParseOptimizer(n); err != nil {
			t.Errorf("ParseOptimizer(%s): %v", n, err)
		}
	}
}
