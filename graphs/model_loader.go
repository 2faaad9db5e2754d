package graphs

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	tf "github.com/galeone/tensorflow/tensorflow/go"
	typespb "github.com/galeone/tensorflow/tensorflow/go/core/framework/types_go_proto"

	"github.com/kfash-tf/kfash-tf/augment"
	"github.com/kfash-tf/kfash-tf/graphs/runs"
	"github.com/kfash-tf/kfash-tf/tfops"
)

// The signatures and keys of the serving contract shared by run folders and
// exported SavedModels (EXPORT/<N>/saved_model.pb).
const (
	loaderSigNameDefault   = "serving_default" // images → outputs
	loaderSigNameBytes     = "serving_bytes"   // image_bytes → outputs
	loaderSigKeyImages     = "images"          // float32 [N,S,S,3], RGB 0–255
	loaderSigKeyImageBytes = "image_bytes"     // string [N], encoded JPEG/PNG/…
	loaderSigKeyProbs      = "probabilities"   // float32 [N,C]
	loaderSigKeyClasses    = "classes"         // int64 [N]
	loaderSigKeyClassNames = "class_names"     // string [N]
	loaderSigMethodPredict = "tensorflow/serving/predict"
	loaderSavedModelFile   = "saved_model.pb"
	loaderLabelsFile       = "assets/labels.txt"
)

// Model kinds, as Model.Kind reports them.
const (
	ModelKindRun        = "run"        // a training run folder restored from a checkpoint
	ModelKindSavedModel = "savedmodel" // a SavedModel loaded by TensorFlow
)

// ModelTensor describes one input or output of a signature, as TensorFlow
// Serving's TensorInfo does.
type ModelTensor struct {
	// Name is the tensor in the graph ("images/images:0"). It is empty for
	// an input kfash-tf handles in Go (the encoded images of a run folder,
	// decoded and resized before the graph sees them).
	Name  string
	DType tf.DataType
	Shape []int64 // -1 for a dimension of any size
}

// DTypeName is TensorFlow's name of the tensor's type ("DT_FLOAT").
func (t ModelTensor) DTypeName() string {
	if n, ok := typespb.DataType_name[int32(t.DType)]; ok {
		return n
	}
	return "DT_INVALID"
}

// ModelSignature describes one signature of a Model: TensorFlow Serving's
// SignatureDef.
type ModelSignature struct {
	Inputs, Outputs map[string]ModelTensor
	MethodName      string
}

// Model is a trained classifier ready to predict, whatever it was loaded
// from: a run folder (its inference graph restored from a checkpoint) or a
// SavedModel (loaded by TensorFlow with the "serve" tag). Predictions are
// safe from several goroutines (a TensorFlow session is), though a server
// does better funnelling them through one batching goroutine.
type Model struct {
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
	sigs        map[string]ModelSignature

	sess *tf.Session
	// Run folder: the restored predictor. SavedModel: the feeds and
	// fetches of its signatures.
	predictor  *Predictor
	images     tf.Output
	probs      tf.Output
	hasBytes   bool // the SavedModel decodes encoded images itself (serving_bytes)
	bytesIn    tf.Output
	bytesProbs tf.Output
}

// OpenModel loads the model at path for prediction:
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
func OpenModel(path string, checkpoint string, sc runs.SessionConfig) (*Model, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("model %s: %w", path, err)
	}
	neither := fmt.Errorf("%s is neither a run folder (config.json) nor a SavedModel (saved_model.pb)", path)
	if !info.IsDir() {
		return nil, neither
	}
	if loaderFileExists(filepath.Join(path, "config.json")) {
		return loaderOpenRun(path, checkpoint, sc)
	}
	if loaderFileExists(filepath.Join(path, loaderSavedModelFile)) {
		version := int64(1)
		if v, err := strconv.ParseInt(filepath.Base(path), 10, 64); err == nil && v >= 0 {
			version = v
		}
		return loaderOpenSavedModel(path, version, sc)
	}
	dir, version, err := loaderLatestVersion(path)
	if err != nil {
		return nil, err
	}
	if dir == "" {
		return nil, neither
	}
	return loaderOpenSavedModel(dir, version, sc)
}

// loaderOpenRun restores a run folder's inference graph.
func loaderOpenRun(dir, checkpoint string, sc runs.SessionConfig) (*Model, error) {
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
		return nil, fmt.Errorf("run %s has no checkpoint to serve (%v): train it first, e.g. kfash-tf train --resume %s", dir, err, dir)
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
	m := &Model{
		kind:        ModelKindRun,
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
	def := ModelSignature{
		MethodName: loaderSigMethodPredict,
		Inputs:     map[string]ModelTensor{loaderSigKeyImages: {Name: loaderTensorName(ig.Images), DType: tf.Float, Shape: []int64{-1, int64(m.size), int64(m.size), 3}}},
		Outputs: map[string]ModelTensor{
			loaderSigKeyProbs:      {Name: loaderTensorName(ig.Probs), DType: tf.Float, Shape: []int64{-1, int64(len(m.classes))}},
			loaderSigKeyClasses:    {Name: loaderTensorName(ig.Classes), DType: tf.Int64, Shape: []int64{-1}},
			loaderSigKeyClassNames: {Name: loaderTensorName(ig.ClassNames), DType: tf.String, Shape: []int64{-1}},
		},
	}
	m.sigs = map[string]ModelSignature{loaderSigNameDefault: def, loaderSigNameBytes: loaderGoBytesSignature(def)}
	return m, nil
}

// loaderGoBytesSignature is serving_bytes for a model that cannot decode images
// itself: the same outputs, fed by encoded images kfash-tf decodes in Go
// (hence no tensor name).
func loaderGoBytesSignature(def ModelSignature) ModelSignature {
	return ModelSignature{
		MethodName: loaderSigMethodPredict,
		Inputs:     map[string]ModelTensor{loaderSigKeyImageBytes: {DType: tf.String, Shape: []int64{-1}}},
		Outputs:    def.Outputs,
	}
}

// loaderOpenSavedModel loads the SavedModel in dir (a folder holding
// saved_model.pb) with the "serve" tag.
func loaderOpenSavedModel(dir string, version int64, sc runs.SessionConfig) (*Model, error) {
	opts, err := SessionOptions(sc)
	if err != nil {
		return nil, err
	}
	sm, err := tf.LoadSavedModel(dir, []string{"serve"}, opts)
	if err != nil {
		return nil, fmt.Errorf("loading SavedModel %s (tag serve): %w", dir, err)
	}
	m, err := loaderNewSavedModel(sm, dir, version)
	if err != nil {
		sm.Session.Close()
		return nil, err
	}
	return m, nil
}

// loaderNewSavedModel checks a loaded SavedModel's signatures against the serving
// contract and wraps it.
func loaderNewSavedModel(sm *tf.SavedModel, dir string, version int64) (*Model, error) {
	def, ok := sm.Signatures[loaderSigNameDefault]
	if !ok {
		return nil, fmt.Errorf("SavedModel %s has no %s signature (it has %s)", dir, loaderSigNameDefault, strings.Join(loaderSignatureNames(sm.Signatures), ", "))
	}
	in, err := loaderSigTensor(def.Inputs, loaderSigKeyImages, "input", dir, loaderSigNameDefault)
	if err != nil {
		return nil, err
	}
	out, err := loaderSigTensor(def.Outputs, loaderSigKeyProbs, "output", dir, loaderSigNameDefault)
	if err != nil {
		return nil, err
	}
	if in.DType != tf.Float || out.DType != tf.Float {
		return nil, fmt.Errorf("SavedModel %s: %s must take float32 %s and give float32 %s", dir, loaderSigNameDefault, loaderSigKeyImages, loaderSigKeyProbs)
	}
	shape, _ := in.Shape.ToSlice()
	if len(shape) != 4 || shape[1] <= 0 || shape[1] != shape[2] || shape[3] != 3 {
		return nil, fmt.Errorf("SavedModel %s: input %s has shape %v; want [-1,S,S,3] (square RGB images)", dir, loaderSigKeyImages, in.Shape)
	}
	m := &Model{kind: ModelKindSavedModel, version: version, dir: dir, size: int(shape[1]), sess: sm.Session}
	if m.images, err = loaderOutput(sm.Graph, in.Name); err != nil {
		return nil, fmt.Errorf("SavedModel %s: input %s: %w", dir, loaderSigKeyImages, err)
	}
	if m.probs, err = loaderOutput(sm.Graph, out.Name); err != nil {
		return nil, fmt.Errorf("SavedModel %s: output %s: %w", dir, loaderSigKeyProbs, err)
	}
	numClasses := int64(-1)
	if dims, err := out.Shape.ToSlice(); err == nil && len(dims) == 2 {
		numClasses = dims[1]
	}
	if m.classes, err = loaderLabels(filepath.Join(dir, loaderLabelsFile), numClasses); err != nil {
		return nil, fmt.Errorf("SavedModel %s: %w", dir, err)
	}

	m.sigs = map[string]ModelSignature{}
	for name, s := range sm.Signatures {
		// TensorFlow 2's __saved_model_init_op is plumbing, not a signature
		// anyone can call.
		if !strings.HasPrefix(name, "__") {
			m.sigs[name] = loaderSignature(s)
		}
	}
	if bs, ok := sm.Signatures[loaderSigNameBytes]; ok {
		bin, err := loaderSigTensor(bs.Inputs, loaderSigKeyImageBytes, "input", dir, loaderSigNameBytes)
		if err != nil {
			return nil, err
		}
		bout, err := loaderSigTensor(bs.Outputs, loaderSigKeyProbs, "output", dir, loaderSigNameBytes)
		if err != nil {
			return nil, err
		}
		if bin.DType != tf.String || bout.DType != tf.Float {
			return nil, fmt.Errorf("SavedModel %s: %s must take string %s and give float32 %s", dir, loaderSigNameBytes, loaderSigKeyImageBytes, loaderSigKeyProbs)
		}
		if m.bytesIn, err = loaderOutput(sm.Graph, bin.Name); err != nil {
			return nil, fmt.Errorf("SavedModel %s: input %s: %w", dir, loaderSigKeyImageBytes, err)
		}
		if m.bytesProbs, err = loaderOutput(sm.Graph, bout.Name); err != nil {
			return nil, fmt.Errorf("SavedModel %s: output %s: %w", dir, loaderSigKeyProbs, err)
		}
		m.hasBytes = true
	} else {
		m.sigs[loaderSigNameBytes] = loaderGoBytesSignature(m.sigs[loaderSigNameDefault])
	}

	// EXPORT/<N>: the model is called after EXPORT, as TensorFlow Serving's
	// --model_base_path would have it.
	abs, _ := filepath.Abs(dir)
	m.name = filepath.Base(abs)
	if _, err := strconv.ParseInt(m.name, 10, 64); err == nil {
		m.name = filepath.Base(filepath.Dir(abs))
	}
	decoding := "decodes images in Go"
	if m.hasBytes {
		decoding = "decodes images in the graph"
	}
	m.description = fmt.Sprintf("SavedModel %s (version %d, %s)", dir, version, decoding)
	return m, nil
}

// loaderLatestVersion returns the highest numeric subfolder of base that
// holds a saved_model.pb, as TensorFlow Serving serves it; "" when base has
// no numeric subfolder at all.
func loaderLatestVersion(base string) (dir string, version int64, err error) {
	entries, err := os.ReadDir(base)
	if err != nil {
		return "", 0, err
	}
	version = -1
	numeric := 0
	for _, e := range entries {
		v, perr := strconv.ParseInt(e.Name(), 10, 64)
		if !e.IsDir() || perr != nil || v < 0 {
			continue
		}
		numeric++
		// A version folder without saved_model.pb is an export still being
		// written, or a failed one: skip it rather than fail.
		if v > version && loaderFileExists(filepath.Join(base, e.Name(), loaderSavedModelFile)) {
			dir, version = filepath.Join(base, e.Name()), v
		}
	}
	if numeric > 0 && dir == "" {
		return "", 0, fmt.Errorf("%s has version folders but none holds a %s", base, loaderSavedModelFile)
	}
	return dir, version, nil
}

// loaderLabels reads the class names of a SavedModel, one a line. Without
// the file the classes are named by their index, when their count is known.
func loaderLabels(path string, numClasses int64) ([]string, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) && numClasses > 0 {
		names := make([]string, numClasses)
		for i := range names {
			names[i] = strconv.Itoa(i)
		}
		return names, nil
	}
	if err != nil {
		return nil, fmt.Errorf("class names: %w", err)
	}
	var names []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); line != "" {
			names = append(names, line)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(names) < 2 {
		return nil, fmt.Errorf("%s names %d classes; a classifier has at least 2", path, len(names))
	}
	if numClasses > 0 && int64(len(names)) != numClasses {
		return nil, fmt.Errorf("%s names %d classes but the model outputs %d probabilities", path, len(names), numClasses)
	}
	return names, nil
}

// loaderSigTensor returns the signature tensor called key, or the only one
// when the signature has a single tensor under another key.
func loaderSigTensor(tensors map[string]tf.TensorInfo, key, what, dir, sig string) (tf.TensorInfo, error) {
	if t, ok := tensors[key]; ok {
		return t, nil
	}
	if len(tensors) == 1 && what == "input" {
		for _, t := range tensors {
			return t, nil
		}
	}
	keys := make([]string, 0, len(tensors))
	for k := range tensors {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return tf.TensorInfo{}, fmt.Errorf("SavedModel %s: signature %s has no %s %q (it has %s)", dir, sig, what, key, strings.Join(keys, ", "))
}

// loaderOutput finds the tensor "op:index" in g.
func loaderOutput(g *tf.Graph, name string) (tf.Output, error) {
	opName, idx := name, 0
	if i := strings.LastIndexByte(name, ':'); i >= 0 {
		n, err := strconv.Atoi(name[i+1:])
		if err != nil {
			return tf.Output{}, fmt.Errorf("malformed tensor name %q", name)
		}
		opName, idx = name[:i], n
	}
	o := g.Operation(opName)
	if o == nil {
		return tf.Output{}, fmt.Errorf("the graph has no operation %q", opName)
	}
	if idx < 0 || idx >= o.NumOutputs() {
		return tf.Output{}, fmt.Errorf("operation %q has no output %d", opName, idx)
	}
	return o.Output(idx), nil
}

func loaderSignature(s tf.Signature) ModelSignature {
	conv := func(in map[string]tf.TensorInfo) map[string]ModelTensor {
		out := make(map[string]ModelTensor, len(in))
		for k, t := range in {
			dims, err := t.Shape.ToSlice()
			if err != nil {
				dims = nil
			}
			out[k] = ModelTensor{Name: t.Name, DType: t.DType, Shape: dims}
		}
		return out
	}
	return ModelSignature{Inputs: conv(s.Inputs), Outputs: conv(s.Outputs), MethodName: s.MethodName}
}

func loaderSignatureNames(sigs map[string]tf.Signature) []string {
	names := make([]string, 0, len(sigs))
	for n := range sigs {
		names = append(names, n)
	}
	sort.Strings(names)
	if len(names) == 0 {
		return []string{"none"}
	}
	return names
}

func loaderTensorName(o tf.Output) string { return fmt.Sprintf("%s:%d", o.Op.Name(), o.Index) }

func loaderFileExists(path string) bool {
	info, err := os.Stat(path)
	return err == nil && !info.IsDir()
}

// Name is the model's default serving name: the run folder's name, or the
// SavedModel's base folder (EXPORT of EXPORT/<N>).
func (m *Model) Name() string { return m.name }

// Version is the served version: a SavedModel's version folder number (1
// for an unversioned folder), or the epoch of a run's checkpoint.
func (m *Model) Version() int64 { return m.version }

// Kind is ModelKindRun or ModelKindSavedModel.
func (m *Model) Kind() string { return m.kind }

// Dir is the folder loaded: the run folder or the SavedModel version folder.
func (m *Model) Dir() string { return m.dir }

// Description says in one line what was loaded, for logs.
func (m *Model) Description() string { return m.description }

// Classes returns the class names, in the order of the probabilities.
func (m *Model) Classes() []string { return append([]string(nil), m.classes...) }

// InputSize is the side S of the square images Predict takes.
func (m *Model) InputSize() int { return m.size }

// DecodesInGraph reports whether the model has its own decoder (a
// SavedModel with a serving_bytes signature) that PredictBytes hands encoded
// images to, rather than decoding and resizing them in Go; see
// CanDecodeInGraph for the formats.
func (m *Model) DecodesInGraph() bool { return m.hasBytes }

// Signatures describes the model's signatures, TensorFlow Serving's
// SignatureDefs: serving_default and serving_bytes at least.
func (m *Model) Signatures() map[string]ModelSignature {
	out := make(map[string]ModelSignature, len(m.sigs))
	for k, v := range m.sigs {
		out[k] = v
	}
	return out
}

// Predict returns the class probabilities, n rows of len(Classes()), of n
// images given as HWC RGB 0–255 floats at the input size, one after the
// other: images must hold exactly n×S×S×3 values.
func (m *Model) Predict(images []float32, n int) ([]float32, error) {
	if m.sess == nil {
		return nil, errors.New("model is closed")
	}
	per := m.size * m.size * 3
	if n <= 0 || len(images) != n*per {
		return nil, fmt.Errorf("predict: %d values for %d images; each image is %d×%d×3 = %d values", len(images), n, m.size, m.size, per)
	}
	if m.predictor != nil {
		probs, _, err := m.predictor.Predict(images, n, nil)
		return probs, err
	}
	x, err := tfops.Float32Tensor(images, []int64{int64(n), int64(m.size), int64(m.size), 3})
	if err != nil {
		return nil, err
	}
	out, err := m.sess.Run(map[tf.Output]*tf.Tensor{m.images: x}, []tf.Output{m.probs}, nil)
	if err != nil {
		return nil, fmt.Errorf("running %s: %w", m.name, err)
	}
	return m.probsOf(out[0], n)
}

// PredictBytes returns the class probabilities of encoded images (JPEG,
// PNG, GIF, WebP or BMP). A SavedModel with a serving_bytes signature
// decodes them in its graph, after a header check against Decode.MaxPixels
// (TensorFlow's decoders have no such limit), unless one of them is in a
// format TensorFlow cannot decode (WebP); otherwise they are decoded and
// stretched to the input size in Go exactly as training did. An image that
// cannot be decoded is an error naming its index.
func (m *Model) PredictBytes(images [][]byte) ([]float32, error) {
	if m.sess == nil {
		return nil, errors.New("model is closed")
	}
	if len(images) == 0 {
		return nil, errors.New("predict: no images")
	}
	inGraph := m.hasBytes
	for i, data := range images {
		format, err := m.CheckImage(data)
		if err != nil {
			return nil, fmt.Errorf("image %d: %w", i, err)
		}
		inGraph = inGraph && m.CanDecodeInGraph(format)
	}
	if !inGraph {
		per := m.size * m.size * 3
		pixels := make([]float32, len(images)*per)
		for i, data := range images {
			if err := m.decodeInto(data, pixels[i*per:(i+1)*per]); err != nil {
				return nil, fmt.Errorf("image %d: %w", i, err)
			}
		}
		return m.Predict(pixels, len(images))
	}
	strs := make([]string, len(images))
	for i, data := range images {
		strs[i] = string(data)
	}
	x, err := tf.NewTensor(strs)
	if err != nil {
		return nil, err
	}
	out, err := m.sess.Run(map[tf.Output]*tf.Tensor{m.bytesIn: x}, []tf.Output{m.bytesProbs}, nil)
	if err != nil {
		return nil, fmt.Errorf("running %s on encoded images: %w", m.name, err)
	}
	return m.probsOf(out[0], len(images))
}

// CanDecodeInGraph reports whether PredictBytes hands images of format (as
// CheckImage names it) to the model's own decoder: the model has a
// serving_bytes signature and TensorFlow's DecodeImage reads the format.
func (m *Model) CanDecodeInGraph(format string) bool {
	switch format {
	case "jpeg", "png", "gif", "bmp":
		return m.hasBytes
	}
	return false
}

// DecodeImage decodes an encoded image and stretches it to the input size:
// S×S×3 floats, HWC RGB 0–255, what Predict takes. It is PredictBytes's Go
// path, for callers that decode on their own goroutines.
func (m *Model) DecodeImage(data []byte) ([]float32, error) {
	out := make([]float32, m.size*m.size*3)
	if err := m.decodeInto(data, out); err != nil {
		return nil, err
	}
	return out, nil
}

func (m *Model) decodeInto(data []byte, dst []float32) error {
	return m.Decode.PreprocessBytes(data, m.size, dst)
}

// CheckImage reads only the headers of an encoded image and checks that it
// is a supported format within Decode.MaxPixels and, for a GIF, within
// MaxGIFFrames frames whose areas sum to at most Decode.MaxPixels: what can
// be known before handing the bytes to a decoder. It returns the format as
// the image package names it ("jpeg", "png", "gif", "webp", "bmp"). Errors
// wrap augment.ErrNotImage or augment.ErrTooLarge when those are the reason.
func (m *Model) CheckImage(data []byte) (format string, err error) {
	info, err := m.InspectImage(data)
	return info.Format, err
}

// InspectImage is CheckImage returning everything the headers told:
// size, GIF frames, and the pixels a decoder may produce (what a server
// budgets per request).
func (m *Model) InspectImage(data []byte) (augment.ImageInfo, error) {
	lim := augment.ImageLimits{MaxPixels: m.Decode.MaxPixels, MaxFrames: m.MaxGIFFrames}
	return lim.Check(data)
}

// probsOf checks and reads a probabilities tensor of n rows.
func (m *Model) probsOf(t *tf.Tensor, n int) ([]float32, error) {
	probs, err := tfops.Float32s(t)
	if err != nil {
		return nil, err
	}
	if len(probs) != n*len(m.classes) {
		return nil, fmt.Errorf("%s returned %d probabilities for %d images of %d classes (shape %v)", m.name, len(probs), n, len(m.classes), t.Shape())
	}
	for _, p := range probs {
		if math.IsNaN(float64(p)) {
			return nil, fmt.Errorf("%s returned NaN probabilities", m.name)
		}
	}
	return probs, nil
}

// Close releases the session. The model cannot predict afterwards; Close
// must not run while a prediction does.
func (m *Model) Close() error {
	if m.sess == nil {
		return nil
	}
	err := m.sess.Close()
	m.sess, m.predictor = nil, nil
	return err
}
