package graphs

import (
	"errors"
	"fmt"
	"path/filepath"

	tf "github.com/galeone/tensorflow/tensorflow/go"

	"github.com/kfash-tf/kfash-tf/graphs/runs"
)

// A Servable opened from a training run folder: its inference graph built
// from config.json and restored from a checkpoint; encoded images are
// decoded in Go, as training decoded them.

// UntrainedRunError is OpenServable's error for a run folder without a
// checkpoint to restore: the run must be trained (or resumed) first.
type UntrainedRunError struct {
	Dir string // the run folder
	Err error  // why no checkpoint resolved; wraps runs.ErrNoCheckpoint
}

// Error says which run has no checkpoint, and why.
func (e *UntrainedRunError) Error() string {
	return fmt.Sprintf("run %s has no checkpoint to serve (%v): train it first", e.Dir, e.Err)
}

// Unwrap returns the checkpoint lookup's error.
func (e *UntrainedRunError) Unwrap() error { return e.Err }

// openRun restores a run folder's inference graph from its checkpoint
// ("best" when "", falling back to "last" when the run has no best yet).
func openRun(dir, checkpoint string, sc runs.SessionConfig) (*Servable, error) {
	run, cfg, err := runs.Open(dir)
	if err != nil {
		return nil, err
	}
	if checkpoint == "" {
		checkpoint = "best"
	}
	rc, err := run.ResolveCheckpoint(checkpoint)
	used := checkpoint
	if errors.Is(err, runs.ErrNoCheckpoint) && checkpoint == "best" {
		// A run interrupted before its first validation has a last
		// checkpoint but no best one: serving it beats refusing, but the
		// description (printed by serve and predict) says so.
		checkpoint = "last"
		rc, err = run.ResolveCheckpoint(checkpoint)
		used = "last — the run has no best checkpoint"
	}
	prefix, st := rc.Prefix, rc.State
	if rc.Recovered != "" {
		used += "; " + rc.Recovered
	}
	if errors.Is(err, runs.ErrNoCheckpoint) {
		return nil, &UntrainedRunError{Dir: dir, Err: err}
	}
	if err != nil {
		return nil, fmt.Errorf("run %s: %w", dir, err)
	}
	ig, err := BuildInferenceGraph(cfg)
	if err != nil {
		return nil, fmt.Errorf("run %s: %w", dir, err)
	}
	p, err := NewPredictor(ig, prefix, sc)
	if err != nil {
		return nil, fmt.Errorf("run %s: %w", dir, err)
	}
	abs, _ := filepath.Abs(dir)
	s := &Servable{
		kind:        KindRun,
		name:        filepath.Base(abs),
		version:     int64(st.Epoch),
		dir:         dir,
		description: fmt.Sprintf("run %s (%s, checkpoint %s, epoch %d)", dir, cfg.Network, used, st.Epoch),
		classes:     append([]string(nil), cfg.Classes...),
		size:        ig.Spec.InputSize,
		sess:        p.Sess,
		predictor:   p,
		images:      ig.Images,
		probs:       ig.Probs,
	}
	def := SignatureDef{
		MethodName: PredictMethod,
		Inputs:     map[string]SignatureTensor{InputImages: {Name: tensorName(ig.Images), DType: tf.Float, Shape: []int64{-1, int64(s.size), int64(s.size), 3}}},
		Outputs: map[string]SignatureTensor{
			OutputProbabilities: {Name: tensorName(ig.Probs), DType: tf.Float, Shape: []int64{-1, int64(len(s.classes))}},
			OutputClasses:       {Name: tensorName(ig.Classes), DType: tf.Int64, Shape: []int64{-1}},
			OutputClassNames:    {Name: tensorName(ig.ClassNames), DType: tf.String, Shape: []int64{-1}},
		},
	}
	s.sigs = map[string]SignatureDef{SignatureImages: def, SignatureBytes: goBytesSignature(def)}
	return s, nil
}

// goBytesSignature is serving_bytes for a servable that cannot decode
// images itself: the same outputs, fed by encoded images kfash-tf decodes
// in Go (hence no tensor name).
func goBytesSignature(def SignatureDef) SignatureDef {
	return SignatureDef{
		MethodName: PredictMethod,
		Inputs:     map[string]SignatureTensor{InputImageBytes: {DType: tf.String, Shape: []int64{-1}}},
		Outputs:    def.Outputs,
	}
}
