package graphs

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"

	tf "github.com/galeone/tensorflow/tensorflow/go"
	typespb "github.com/galeone/tensorflow/tensorflow/go/core/framework/types_go_proto"

	"github.com/kfash-tf/kfash-tf/augment"
	"github.com/kfash-tf/kfash-tf/graphs/runs"
	"github.com/kfash-tf/kfash-tf/tfops"
)

// Kinds of Servable, as Servable.Kind reports them.
const (
	KindRun        = "run"        // a training run folder restored from a checkpoint
	KindSavedModel = "savedmodel" // a SavedModel loaded by TensorFlow
)

// SignatureTensor describes one input or output of a signature, as
// TensorFlow Serving's TensorInfo does.
type SignatureTensor struct {
	// Name is the tensor in the graph ("images/images:0"). It is empty for
	// an input kfash-tf handles in Go (the encoded images of a run folder,
	// decoded and resized before the graph sees them).
	Name  string
	DType tf.DataType
	Shape []int64 // -1 for a dimension of any size
}

// DTypeName is TensorFlow's name of the tensor's type ("DT_FLOAT").
func (t SignatureTensor) DTypeName() string {
	if n, ok := typespb.DataType_name[int32(t.DType)]; ok {
		return n
	}
	return "DT_INVALID"
}

// SignatureDef describes one signature of a Servable, as TensorFlow
// Serving's SignatureDef does.
type SignatureDef struct {
	Inputs, Outputs map[string]SignatureTensor
	MethodName      string
}

// Servable is a trained classifier ready to predict and be served, whatever
// it was opened from: a run folder (its inference graph restored from a
// checkpoint, servable_run.go) or a SavedModel (loaded by TensorFlow with
// the "serve" tag, servable_savedmodel.go). Both present the serving
// contract (contract.go). Predictions are safe from several goroutines (a
// TensorFlow session is), though a server does better funnelling them
// through one batching goroutine.
type Servable struct {
	// Decode guards the decoding PredictBytes and DecodeImage do in Go and
	// the header check before in-graph decoding (its MaxPixels stops
	// decompression bombs). Set it before predicting.
	Decode augment.DecodeOptions
	// MaxGIFFrames bounds the frames of a GIF CheckImage accepts (0:
	// augment.DefaultMaxGIFFrames). Only the first frame is used, but
	// TensorFlow's GIF decoder decompresses them all, so a small animation
	// can cost gigabytes.
	MaxGIFFrames int

	kind        string
	name        string
	version     int64
	dir         string // the run folder or the SavedModel version folder
	description string
	classes     []string
	size        int
	sigs        map[string]SignatureDef

	sess *tf.Session
	// Run folder: the restored predictor. SavedModel: the feeds and
	// fetches of its signatures.
	predictor  *Predictor
	saved      *tf.SavedModel // SavedModel: the loaded model, for its explain signature
	images     tf.Output
	probs      tf.Output
	hasBytes   bool // the SavedModel decodes encoded images itself (serving_bytes)
	bytesIn    tf.Output
	bytesProbs tf.Output
}

// OpenServable opens the model at path for prediction:
//
//   - a run folder (it has config.json): its inference graph, restored from
//     the checkpoint named checkpoint ("best" by default, falling back to
//     "last" when the run has no best yet);
//   - a SavedModel folder (it has saved_model.pb), or a base folder of
//     numeric version folders (EXPORT/1, EXPORT/2, …), of which the highest
//     holding a saved_model.pb is loaded, as TensorFlow Serving does. Its
//     serving_default signature must take images (float32 [N,S,S,3]) and
//     give probabilities (float32 [N,C]); the class names come from
//     assets/labels.txt. checkpoint is ignored.
func OpenServable(path string, checkpoint string, sc runs.SessionConfig) (*Servable, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("model %s: %w", path, err)
	}
	neither := fmt.Errorf("%s is neither a run folder (config.json) nor a SavedModel (%s)", path, SavedModelFile)
	if !info.IsDir() {
		return nil, neither
	}
	if isFile(runs.Run{Dir: path}.ConfigPath()) {
		return openRun(path, checkpoint, sc)
	}
	if isFile(filepath.Join(path, SavedModelFile)) {
		version := int64(1)
		if v, err := strconv.ParseInt(filepath.Base(path), 10, 64); err == nil && v >= 0 {
			version = v
		}
		return openSavedModel(path, version, sc)
	}
	dir, version, err := latestVersion(path)
	if err != nil {
		return nil, err
	}
	if dir == "" {
		return nil, neither
	}
	return openSavedModel(dir, version, sc)
}

// isFile reports whether path is a regular file (or a link to one).
func isFile(path string) bool {
	info, err := os.Stat(path)
	return err == nil && !info.IsDir()
}

// Name is the model's default serving name: the run folder's name, or the
// SavedModel's base folder (EXPORT of EXPORT/<N>).
func (s *Servable) Name() string { return s.name }

// Version is the served version: a SavedModel's version folder number (1
// for an unversioned folder), or the epoch of a run's checkpoint.
func (s *Servable) Version() int64 { return s.version }

// Kind is KindRun or KindSavedModel.
func (s *Servable) Kind() string { return s.kind }

// Dir is the folder loaded: the run folder or the SavedModel version folder.
func (s *Servable) Dir() string { return s.dir }

// Description says in one line what was loaded, for logs.
func (s *Servable) Description() string { return s.description }

// Classes returns the class names, in the order of the probabilities.
func (s *Servable) Classes() []string { return append([]string(nil), s.classes...) }

// InputSize is the side S of the square images Predict takes.
func (s *Servable) InputSize() int { return s.size }

// DecodesInGraph reports whether the model has its own decoder (a
// SavedModel with a serving_bytes signature) that PredictBytes hands encoded
// images to, rather than decoding and resizing them in Go; see
// CanDecodeInGraph for the formats.
func (s *Servable) DecodesInGraph() bool { return s.hasBytes }

// Signatures describes the model's signatures, TensorFlow Serving's
// SignatureDefs: serving_default and serving_bytes at least.
func (s *Servable) Signatures() map[string]SignatureDef {
	out := make(map[string]SignatureDef, len(s.sigs))
	for k, v := range s.sigs {
		out[k] = v
	}
	return out
}

// Predict returns the class probabilities, n rows of len(Classes()), of n
// images given as HWC RGB 0–255 floats at the input size, one after the
// other: images must hold exactly n×S×S×3 values.
func (s *Servable) Predict(images []float32, n int) ([]float32, error) {
	if s.sess == nil {
		return nil, errors.New("model is closed")
	}
	per := s.size * s.size * 3
	if n <= 0 || len(images) != n*per {
		return nil, fmt.Errorf("predict: %d values for %d images; each image is %d×%d×3 = %d values", len(images), n, s.size, s.size, per)
	}
	if s.predictor != nil {
		probs, _, err := s.predictor.Predict(images, n, nil)
		return probs, err
	}
	x, err := tfops.Float32Tensor(images, []int64{int64(n), int64(s.size), int64(s.size), 3})
	if err != nil {
		return nil, err
	}
	out, err := s.sess.Run(map[tf.Output]*tf.Tensor{s.images: x}, []tf.Output{s.probs}, nil)
	if err != nil {
		return nil, fmt.Errorf("running %s: %w", s.name, err)
	}
	return s.probsOf(out[0], n)
}

// PredictBytes returns the class probabilities of encoded images (JPEG,
// PNG, GIF, WebP or BMP). A SavedModel with a serving_bytes signature
// decodes them in its graph, after a header check against Decode.MaxPixels
// (TensorFlow's decoders have no such limit), unless one of them is in a
// format TensorFlow cannot decode (WebP); otherwise they are decoded and
// stretched to the input size in Go exactly as training did. An image that
// cannot be decoded is an error naming its index.
func (s *Servable) PredictBytes(images [][]byte) ([]float32, error) {
	if s.sess == nil {
		return nil, errors.New("model is closed")
	}
	if len(images) == 0 {
		return nil, errors.New("predict: no images")
	}
	inGraph := s.hasBytes
	for i, data := range images {
		format, err := s.CheckImage(data)
		if err != nil {
			return nil, fmt.Errorf("image %d: %w", i, err)
		}
		inGraph = inGraph && s.CanDecodeInGraph(format)
	}
	if !inGraph {
		per := s.size * s.size * 3
		pixels := make([]float32, len(images)*per)
		for i, data := range images {
			if err := s.decodeInto(data, pixels[i*per:(i+1)*per]); err != nil {
				return nil, fmt.Errorf("image %d: %w", i, err)
			}
		}
		return s.Predict(pixels, len(images))
	}
	strs := make([]string, len(images))
	for i, data := range images {
		strs[i] = string(data)
	}
	x, err := tf.NewTensor(strs)
	if err != nil {
		return nil, err
	}
	out, err := s.sess.Run(map[tf.Output]*tf.Tensor{s.bytesIn: x}, []tf.Output{s.bytesProbs}, nil)
	if err != nil {
		return nil, fmt.Errorf("running %s on encoded images: %w", s.name, err)
	}
	return s.probsOf(out[0], len(images))
}

// CanDecodeInGraph reports whether PredictBytes hands images of format (as
// CheckImage names it) to the model's own decoder: the model has a
// serving_bytes signature and TensorFlow's DecodeImage reads the format.
func (s *Servable) CanDecodeInGraph(format string) bool {
	switch format {
	case "jpeg", "png", "gif", "bmp":
		return s.hasBytes
	}
	return false
}

// DecodeImage decodes an encoded image and stretches it to the input size:
// S×S×3 floats, HWC RGB 0–255, what Predict takes. It is PredictBytes's Go
// path, for callers that decode on their own goroutines.
func (s *Servable) DecodeImage(data []byte) ([]float32, error) {
	out := make([]float32, s.size*s.size*3)
	if err := s.decodeInto(data, out); err != nil {
		return nil, err
	}
	return out, nil
}

func (s *Servable) decodeInto(data []byte, dst []float32) error {
	return s.Decode.PreprocessBytes(data, s.size, dst)
}

// CheckImage reads only the headers of an encoded image and checks that it
// is a supported format within Decode.MaxPixels and, for a GIF, within
// MaxGIFFrames frames whose areas sum to at most Decode.MaxPixels: what can
// be known before handing the bytes to a decoder. It returns the format as
// the image package names it ("jpeg", "png", "gif", "webp", "bmp"). Errors
// wrap augment.ErrNotImage or augment.ErrTooLarge when those are the reason.
func (s *Servable) CheckImage(data []byte) (format string, err error) {
	info, err := s.InspectImage(data)
	return info.Format, err
}

// InspectImage is CheckImage returning everything the headers told:
// size, GIF frames, and the pixels a decoder may produce (what a server
// budgets per request).
func (s *Servable) InspectImage(data []byte) (augment.ImageInfo, error) {
	lim := augment.ImageLimits{MaxPixels: s.Decode.MaxPixels, MaxFrames: s.MaxGIFFrames}
	return lim.Check(data)
}

// probsOf checks and reads a probabilities tensor of n rows.
func (s *Servable) probsOf(t *tf.Tensor, n int) ([]float32, error) {
	probs, err := tfops.Float32s(t)
	if err != nil {
		return nil, err
	}
	if len(probs) != n*len(s.classes) {
		return nil, fmt.Errorf("%s returned %d probabilities for %d images of %d classes (shape %v)", s.name, len(probs), n, len(s.classes), t.Shape())
	}
	for _, p := range probs {
		if math.IsNaN(float64(p)) {
			return nil, fmt.Errorf("%s returned NaN probabilities", s.name)
		}
	}
	return probs, nil
}

// Close releases the session. The model cannot predict afterwards; Close
// must not run while a prediction does.
func (s *Servable) Close() error {
	if s.sess == nil {
		return nil
	}
	err := s.sess.Close()
	s.sess, s.predictor = nil, nil
	return err
}
