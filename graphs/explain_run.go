package graphs

import (
	"errors"
	"fmt"

	tf "github.com/galeone/tensorflow/tensorflow/go"

	"github.com/kfash-tf/kfash-tf/tfops"
)

// Explanation is Grad-CAM's answer for one image.
type Explanation struct {
	Probs     []float32 // the class probabilities
	Predicted int       // argmax of Probs
	Target    int       // the class explained
	Map       []float32 // S×S, row-major, normalised to [0,1]
	Size      int       // S: the network's input size
	Min, Max  float32   // the map's range before normalising
}

// Explainer computes Grad-CAM maps for a Servable opened from a run folder
// (or from a SavedModel exported with the explain signature). Like
// prediction it is safe from several goroutines.
type Explainer struct {
	s       *Servable
	network string
	layer   string
	images  tf.Output
	probs   tf.Output
	target  tf.Output
	camMap  tf.Output
	min     tf.Output
	max     tf.Output
	session *tf.Session
}

// NewExplainer adds Grad-CAM over layer ("" for the network's default) to
// s. For a run folder it extends the restored inference graph, so call it
// before s is used from several goroutines; a SavedModel must carry the
// explain signature (whose layer is fixed at export: a layer other than ""
// is then an error). Otherwise the error wraps ErrNoExplain.
func NewExplainer(s *Servable, layer string) (*Explainer, error) {
	if s.sess == nil {
		return nil, errors.New("model is closed")
	}
	if s.predictor == nil {
		return newSavedModelExplainer(s, layer)
	}
	cam, err := AddGradCAM(s.predictor.IG, layer)
	if err != nil {
		return nil, err
	}
	return &Explainer{s: s, network: s.predictor.IG.Spec.Name, layer: cam.Layer, images: s.predictor.IG.Images, probs: s.predictor.IG.Probs,
		target: cam.Target, camMap: cam.Map, min: cam.Min, max: cam.Max, session: s.sess}, nil
}

// Network is the explained network's name (e.g. "vgg8").
func (e *Explainer) Network() string { return e.network }

// Layer is the name of the explained layer.
func (e *Explainer) Layer() string { return e.layer }

// Explain returns the Grad-CAM of n images (HWC RGB 0–255 floats at the
// input size, one after the other). targets, when not nil, holds the class
// to explain for each image, -1 for its predicted class; nil explains every
// image's predicted class.
func (e *Explainer) Explain(images []float32, n int, targets []int) ([]Explanation, error) {
	size := e.s.size
	per := size * size * 3
	if n <= 0 || len(images) != n*per {
		return nil, fmt.Errorf("explain: %d values for %d images; each image is %d×%d×3 = %d values", len(images), n, size, size, per)
	}
	k := len(e.s.classes)
	if targets != nil && len(targets) != n {
		return nil, fmt.Errorf("explain: %d target classes for %d images", len(targets), n)
	}
	for i, t := range targets {
		if t < -1 || t >= k {
			return nil, fmt.Errorf("explain: image %d: class %d out of range [0,%d)", i, t, k)
		}
	}
	x, err := tfops.Float32Tensor(images, []int64{int64(n), int64(size), int64(size), 3})
	if err != nil {
		return nil, err
	}
	defer tfops.Free(x)
	feeds := map[tf.Output]*tf.Tensor{e.images: x}
	// The target is fetched when it defaults to the prediction; a fed
	// tensor cannot also be fetched.
	fetches := []tf.Output{e.probs, e.camMap, e.min, e.max}
	var t32 []int32
	if targets == nil {
		fetches = append(fetches, e.target)
	} else {
		// A -1 needs the prediction first: the target input defaults to the
		// predicted class for the whole batch or not at all.
		t32 = make([]int32, n)
		var pred []float32
		for i, t := range targets {
			if t < 0 && pred == nil {
				if pred, err = e.run(feeds, e.probs); err != nil {
					return nil, err
				}
			}
			if t < 0 {
				t = argmax(pred[i*k : (i+1)*k])
			}
			t32[i] = int32(t)
		}
		tt, err := tf.NewTensor(t32)
		if err != nil {
			return nil, err
		}
		defer tfops.Free(tt)
		feeds[e.target] = tt
	}
	out, err := e.session.Run(feeds, fetches, nil)
	if err != nil {
		return nil, fmt.Errorf("explaining with %s: %w", e.s.name, err)
	}
	defer tfops.Free(out...)
	probs, err := tfops.Float32s(out[0])
	if err != nil {
		return nil, err
	}
	maps, err1 := tfops.Float32s(out[1])
	mins, err2 := tfops.Float32s(out[2])
	maxs, err3 := tfops.Float32s(out[3])
	tgt, ok := t32, true
	if targets == nil {
		tgt, ok = out[4].Value().([]int32)
	}
	if err := errors.Join(err1, err2, err3); err != nil || !ok || len(probs) != n*k || len(maps) != n*size*size || len(tgt) != n {
		return nil, fmt.Errorf("explain: unexpected outputs from the graph (%v)", err)
	}
	res := make([]Explanation, n)
	for i := range res {
		p := append([]float32(nil), probs[i*k:(i+1)*k]...)
		res[i] = Explanation{Probs: p, Predicted: argmax(p), Target: int(tgt[i]), Size: size,
			Map: append([]float32(nil), maps[i*size*size:(i+1)*size*size]...), Min: mins[i], Max: maxs[i]}
	}
	return res, nil
}

// run fetches one float32 output.
func (e *Explainer) run(feeds map[tf.Output]*tf.Tensor, fetch tf.Output) ([]float32, error) {
	out, err := e.session.Run(feeds, []tf.Output{fetch}, nil)
	if err != nil {
		return nil, fmt.Errorf("explaining with %s: %w", e.s.name, err)
	}
	defer tfops.Free(out...)
	return tfops.Float32s(out[0])
}

func argmax(v []float32) int {
	best := 0
	for i := range v {
		if v[i] > v[best] {
			best = i
		}
	}
	return best
}
