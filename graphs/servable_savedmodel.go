package graphs

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	tf "github.com/galeone/tensorflow/tensorflow/go"

	"github.com/kfash-tf/kfash-tf/graphs/runs"
)

// A Servable opened from a SavedModel: loaded by TensorFlow's loader with
// the "serve" tag, its signatures checked against the serving contract
// (contract.go); with a serving_bytes signature it decodes images in its
// graph.

// openSavedModel loads the SavedModel in dir (a folder holding
// saved_model.pb) with the "serve" tag.
func openSavedModel(dir string, version int64, sc runs.SessionConfig) (*Servable, error) {
	opts, err := SessionOptions(sc)
	if err != nil {
		return nil, err
	}
	sm, err := tf.LoadSavedModel(dir, []string{ServeTag}, opts)
	if err != nil {
		return nil, fmt.Errorf("loading SavedModel %s (tag %s): %w", dir, ServeTag, err)
	}
	s, err := newSavedModelServable(sm, dir, version)
	if err != nil {
		sm.Session.Close()
		return nil, err
	}
	return s, nil
}

// newSavedModelServable checks a loaded SavedModel's signatures against
// the serving contract and wraps it.
func newSavedModelServable(sm *tf.SavedModel, dir string, version int64) (*Servable, error) {
	def, ok := sm.Signatures[SignatureImages]
	if !ok {
		return nil, fmt.Errorf("SavedModel %s has no %s signature (it has %s)", dir, SignatureImages, strings.Join(signatureNames(sm.Signatures), ", "))
	}
	in, err := signatureTensor(def.Inputs, InputImages, "input", dir, SignatureImages)
	if err != nil {
		return nil, err
	}
	out, err := signatureTensor(def.Outputs, OutputProbabilities, "output", dir, SignatureImages)
	if err != nil {
		return nil, err
	}
	if in.DType != tf.Float || out.DType != tf.Float {
		return nil, fmt.Errorf("SavedModel %s: %s must take float32 %s and give float32 %s", dir, SignatureImages, InputImages, OutputProbabilities)
	}
	shape, _ := in.Shape.ToSlice()
	if len(shape) != 4 || shape[1] <= 0 || shape[1] != shape[2] || shape[3] != 3 {
		return nil, fmt.Errorf("SavedModel %s: input %s has shape %v; want [-1,S,S,3] (square RGB images)", dir, InputImages, in.Shape)
	}
	s := &Servable{kind: KindSavedModel, version: version, dir: dir, size: int(shape[1]), sess: sm.Session, saved: sm}
	if s.images, err = graphOutput(sm.Graph, in.Name); err != nil {
		return nil, fmt.Errorf("SavedModel %s: input %s: %w", dir, InputImages, err)
	}
	if s.probs, err = graphOutput(sm.Graph, out.Name); err != nil {
		return nil, fmt.Errorf("SavedModel %s: output %s: %w", dir, OutputProbabilities, err)
	}
	numClasses := int64(-1)
	if dims, err := out.Shape.ToSlice(); err == nil && len(dims) == 2 {
		numClasses = dims[1]
	}
	if s.classes, err = readLabels(filepath.Join(dir, LabelsAsset), numClasses); err != nil {
		return nil, fmt.Errorf("SavedModel %s: %w", dir, err)
	}

	s.sigs = map[string]SignatureDef{}
	for name, sig := range sm.Signatures {
		// TensorFlow 2's __saved_model_init_op is plumbing, not a signature
		// anyone can call.
		if !strings.HasPrefix(name, "__") {
			s.sigs[name] = signatureDef(sig)
		}
	}
	if bs, ok := sm.Signatures[SignatureBytes]; ok {
		bin, err := signatureTensor(bs.Inputs, InputImageBytes, "input", dir, SignatureBytes)
		if err != nil {
			return nil, err
		}
		bout, err := signatureTensor(bs.Outputs, OutputProbabilities, "output", dir, SignatureBytes)
		if err != nil {
			return nil, err
		}
		if bin.DType != tf.String || bout.DType != tf.Float {
			return nil, fmt.Errorf("SavedModel %s: %s must take string %s and give float32 %s", dir, SignatureBytes, InputImageBytes, OutputProbabilities)
		}
		if s.bytesIn, err = graphOutput(sm.Graph, bin.Name); err != nil {
			return nil, fmt.Errorf("SavedModel %s: input %s: %w", dir, InputImageBytes, err)
		}
		if s.bytesProbs, err = graphOutput(sm.Graph, bout.Name); err != nil {
			return nil, fmt.Errorf("SavedModel %s: output %s: %w", dir, OutputProbabilities, err)
		}
		s.hasBytes = true
	} else {
		s.sigs[SignatureBytes] = goBytesSignature(s.sigs[SignatureImages])
	}

	// EXPORT/<N>: the model is called after EXPORT, as TensorFlow Serving's
	// --model_base_path would have it.
	abs, _ := filepath.Abs(dir)
	s.name = filepath.Base(abs)
	if _, err := strconv.ParseInt(s.name, 10, 64); err == nil {
		s.name = filepath.Base(filepath.Dir(abs))
	}
	decoding := "decodes images in Go"
	if s.hasBytes {
		decoding = "decodes images in the graph"
	}
	s.description = fmt.Sprintf("SavedModel %s (version %d, %s)", dir, version, decoding)
	return s, nil
}

// latestVersion returns the highest numeric subfolder of base that holds a
// saved_model.pb, as TensorFlow Serving serves it; "" when base has no
// numeric subfolder at all.
func latestVersion(base string) (dir string, version int64, err error) {
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
		if v > version && isFile(filepath.Join(base, e.Name(), SavedModelFile)) {
			dir, version = filepath.Join(base, e.Name()), v
		}
	}
	if numeric > 0 && dir == "" {
		return "", 0, fmt.Errorf("%s has version folders but none holds a %s", base, SavedModelFile)
	}
	return dir, version, nil
}

// readLabels reads the class names of a SavedModel, one a line. Without
// the file the classes are named by their index, when their count is
// known.
func readLabels(path string, numClasses int64) ([]string, error) {
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

// signatureTensor returns the signature tensor called key, or the only one
// when the signature has a single input under another key.
func signatureTensor(tensors map[string]tf.TensorInfo, key, what, dir, sig string) (tf.TensorInfo, error) {
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

// graphOutput finds the tensor "op:index" (or "op", index 0) in g: the
// inverse of tensorName.
func graphOutput(g *tf.Graph, name string) (tf.Output, error) {
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

// signatureDef converts a loaded signature.
func signatureDef(s tf.Signature) SignatureDef {
	conv := func(in map[string]tf.TensorInfo) map[string]SignatureTensor {
		out := make(map[string]SignatureTensor, len(in))
		for k, t := range in {
			dims, err := t.Shape.ToSlice()
			if err != nil {
				dims = nil
			}
			out[k] = SignatureTensor{Name: t.Name, DType: t.DType, Shape: dims}
		}
		return out
	}
	return SignatureDef{Inputs: conv(s.Inputs), Outputs: conv(s.Outputs), MethodName: s.MethodName}
}

// signatureNames lists the signatures' names, sorted ("none" for none).
func signatureNames(sigs map[string]tf.Signature) []string {
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
