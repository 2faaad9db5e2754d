package runs

import (
	"fmt"
	"math"
)

// Schedule gives the learning rate of every step. It is computed in Go and
// fed to the graph, so a resumed run needs only the step number. Lengths are
// in epochs, as users think of them; StepsPerEpoch converts.
type Schedule struct {
	Kind          string  `json:"kind"`                    // "constant" (the study), "cosine" (with linear warmup) or "step"
	Base          float64 `json:"lr"`                      // the peak learning rate
	WarmupEpochs  float64 `json:"warmup_epochs,omitempty"` // cosine: linear ramp from 0
	StepEpochs    int     `json:"step_epochs,omitempty"`   // step: multiply by Gamma every StepEpochs epochs
	Gamma         float64 `json:"gamma,omitempty"`         // step: decay factor
	Epochs        int     `json:"epochs"`                  // the run's length (cosine decays to 0 at its end)
	StepsPerEpoch int     `json:"steps_per_epoch"`
}

// SettingError is the error of a setting out of its range. Setting is the
// setting's key in config.json ("lr", "warmup_epochs"), so that a caller
// can name it in its own terms (the command line, by its flag).
type SettingError struct {
	Setting string
	Problem string // what is wrong, e.g. "must be a positive number, got 0"
}

// Error names the setting and the problem, e.g. "lr must be a positive
// number, got 0".
func (e *SettingError) Error() string { return e.Setting + " " + e.Problem }

// Validate checks the schedule's parameters; the error is a *SettingError.
func (s Schedule) Validate() error {
	if s.Base <= 0 || math.IsNaN(s.Base) || math.IsInf(s.Base, 0) {
		return &SettingError{"lr", fmt.Sprintf("must be a positive number, got %v", s.Base)}
	}
	switch s.Kind {
	case "constant":
	case "cosine":
		if s.WarmupEpochs < 0 {
			return &SettingError{"warmup_epochs", "must not be negative"}
		}
	case "step":
		if s.StepEpochs <= 0 {
			return &SettingError{"step_epochs", "must be at least 1 for a step schedule"}
		}
		if s.Gamma <= 0 {
			return &SettingError{"gamma", "must be positive for a step schedule"}
		}
	default:
		return &SettingError{"kind", fmt.Sprintf("%q is unknown: use constant, cosine or step", s.Kind)}
	}
	return nil
}

// At returns the learning rate of the 0-based step.
func (s Schedule) At(step int64) float64 {
	spe := float64(max(s.StepsPerEpoch, 1))
	switch s.Kind {
	case "cosine":
		warm := s.WarmupEpochs * spe
		if float64(step) < warm {
			return s.Base * float64(step+1) / warm
		}
		span := float64(s.Epochs)*spe - warm
		if span <= 0 {
			return s.Base
		}
		p := math.Min(1, (float64(step)-warm)/span)
		return s.Base * 0.5 * (1 + math.Cos(math.Pi*p))
	case "step":
		return s.Base * math.Pow(s.Gamma, math.Floor(float64(step)/(float64(s.StepEpochs)*spe)))
	default:
		return s.Base
	}
}
