package graphs

import (
	"fmt"

	tf "github.com/galeone/tensorflow/tensorflow/go"

	"github.com/kfash-tf/kfash-tf/tfops"
)

// newSavedModelExplainer explains with a SavedModel's explain signature.
// The signature's layer was fixed at export, so only "" (or that very
// layer) may be asked for.
func newSavedModelExplainer(s *Servable, layer string) (*Explainer, error) {
	sig, ok := s.saved.Signatures[SignatureExplain]
	if !ok {
		return nil, fmt.Errorf("SavedModel %s has no %q signature: %w", s.dir, SignatureExplain, ErrNoExplain)
	}
	e := &Explainer{s: s, session: s.sess}
	tensors := []struct {
		infos map[string]tf.TensorInfo
		key   string
		dst   *tf.Output
	}{
		{sig.Inputs, InputImages, &e.images},
		{sig.Outputs, OutputProbabilities, &e.probs},
		// The target output is the PlaceholderWithDefault itself: feeding
		// it explains another class than the predicted one.
		{sig.Outputs, OutputTarget, &e.target},
		{sig.Outputs, OutputMap, &e.camMap},
		{sig.Outputs, OutputMapMin, &e.min},
		{sig.Outputs, OutputMapMax, &e.max},
	}
	for _, t := range tensors {
		o, err := signatureOutput(s.saved.Graph, t.infos, t.key)
		if err != nil {
			return nil, fmt.Errorf("SavedModel %s: signature %s: %w", s.dir, SignatureExplain, err)
		}
		*t.dst = o
	}
	network, err := signatureOutput(s.saved.Graph, sig.Outputs, OutputNetwork)
	if err != nil {
		return nil, fmt.Errorf("SavedModel %s: signature %s: %w", s.dir, SignatureExplain, err)
	}
	camLayer, err := signatureOutput(s.saved.Graph, sig.Outputs, OutputLayer)
	if err != nil {
		return nil, fmt.Errorf("SavedModel %s: signature %s: %w", s.dir, SignatureExplain, err)
	}
	// The names are per image: one blank image yields them, and the
	// session prunes the network away (they depend on the batch size only).
	x, err := tfops.Float32Tensor(make([]float32, s.size*s.size*3), []int64{1, int64(s.size), int64(s.size), 3})
	if err != nil {
		return nil, err
	}
	defer tfops.Free(x)
	out, err := s.sess.Run(map[tf.Output]*tf.Tensor{e.images: x}, []tf.Output{network, camLayer}, nil)
	if err != nil {
		return nil, fmt.Errorf("SavedModel %s: reading the explained layer: %w", s.dir, err)
	}
	defer tfops.Free(out...)
	nv, ok1 := out[0].Value().([]string)
	lv, ok2 := out[1].Value().([]string)
	if !ok1 || !ok2 || len(nv) != 1 || len(lv) != 1 {
		return nil, fmt.Errorf("SavedModel %s: signature %s: %s and %s must be string [N]", s.dir, SignatureExplain, OutputNetwork, OutputLayer)
	}
	e.network, e.layer = nv[0], lv[0]
	if layer != "" && layer != e.layer {
		return nil, fmt.Errorf("SavedModel %s explains layer %s, fixed at export: explain layer %s from the run folder", s.dir, e.layer, layer)
	}
	return e, nil
}
