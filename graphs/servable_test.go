package graphs_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	tf "github.com/galeone/tensorflow/tensorflow/go"
	graphpb "github.com/galeone/tensorflow/tensorflow/go/core/framework/graph_go_proto"
	shapepb "github.com/galeone/tensorflow/tensorflow/go/core/framework/tensor_shape_go_proto"
	typespb "github.com/galeone/tensorflow/tensorflow/go/core/framework/types_go_proto"
	corepb "github.com/galeone/tensorflow/tensorflow/go/core/protobuf/for_core_protos_go_proto"
	"google.golang.org/protobuf/proto"

	"github.com/kfash-tf/kfash-tf/augment"
	"github.com/kfash-tf/kfash-tf/augment/augmenttest"
	"github.com/kfash-tf/kfash-tf/graphs"
	"github.com/kfash-tf/kfash-tf/graphs/graphstest"
	"github.com/kfash-tf/kfash-tf/graphs/runs"
)

var servableClasses = []string{"circle", "square", "stripe"}

// servableRun writes a run folder whose "last" checkpoint (epoch 2) holds
// freshly initialised vgg8 weights: a servable run without training. It
// returns the inference graph and the checkpoint prefix.
func servableRun(t *testing.T, dir string) (*graphs.InferenceGraph, string) {
	t.Helper()
	cfg := runs.Config{Network: "vgg8", InputSize: 150, Classes: servableClasses, Normalize: "none",
		Std: [3]float32{1, 1, 1}, Seed: 5, Created: time.Now()}
	ig, prefix, err := graphstest.UntrainedRun(dir, cfg, runs.CheckpointState{Epoch: 2, Step: 7, Time: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	return ig, prefix
}

// servableSavedModel writes dir/saved_model.pb (tag serve, serving_default
// only), dir/variables/ from the checkpoint at prefix and
// dir/assets/labels.txt: a SavedModel as TensorFlow Serving loads it,
// independent of kfash-tf's own exporter.
func servableSavedModel(t *testing.T, ig *graphs.InferenceGraph, prefix, dir string) {
	t.Helper()
	var def bytes.Buffer
	if _, err := ig.Graph.WriteTo(&def); err != nil {
		t.Fatal(err)
	}
	gdef := &graphpb.GraphDef{}
	if err := proto.Unmarshal(def.Bytes(), gdef); err != nil {
		t.Fatal(err)
	}
	name := func(o tf.Output) string { return fmt.Sprintf("%s:%d", o.Op.Name(), o.Index) }
	shape := func(dims ...int64) *shapepb.TensorShapeProto {
		s := &shapepb.TensorShapeProto{}
		for _, d := range dims {
			s.Dim = append(s.Dim, &shapepb.TensorShapeProto_Dim{Size: d})
		}
		return s
	}
	info := func(o tf.Output, dt typespb.DataType, dims ...int64) *corepb.TensorInfo {
		return &corepb.TensorInfo{Encoding: &corepb.TensorInfo_Name{Name: name(o)}, Dtype: dt, TensorShape: shape(dims...)}
	}
	meta := &corepb.MetaGraphDef{
		MetaInfoDef: &corepb.MetaGraphDef_MetaInfoDef{Tags: []string{"serve"}},
		GraphDef:    gdef,
		SaverDef: &corepb.SaverDef{
			FilenameTensorName: name(ig.Saver.Filename),
			SaveTensorName:     name(ig.Saver.SaveTensor),
			RestoreOpName:      ig.Saver.RestoreOp.Name(),
			Version:            corepb.SaverDef_V2,
		},
		SignatureDef: map[string]*corepb.SignatureDef{"serving_default": {
			Inputs: map[string]*corepb.TensorInfo{"images": info(ig.Images, typespb.DataType_DT_FLOAT, -1, 150, 150, 3)},
			Outputs: map[string]*corepb.TensorInfo{
				"probabilities": info(ig.Probs, typespb.DataType_DT_FLOAT, -1, int64(len(servableClasses))),
				"classes":       info(ig.Classes, typespb.DataType_DT_INT64, -1),
				"class_names":   info(ig.ClassNames, typespb.DataType_DT_STRING, -1),
			},
			MethodName: "tensorflow/serving/predict",
		}},
	}
	data, err := proto.Marshal(&corepb.SavedModel{SavedModelSchemaVersion: 1, MetaGraphs: []*corepb.MetaGraphDef{meta}})
	if err != nil {
		t.Fatal(err)
	}
	for _, sub := range []string{"variables", "assets"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "saved_model.pb"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, suffix := range []string{".index", ".data-00000-of-00001"} {
		copyFile(t, prefix+suffix, filepath.Join(dir, "variables", "variables"+suffix))
	}
	labels := strings.Join(servableClasses, "\n") + "\n"
	if err := os.WriteFile(filepath.Join(dir, "assets", "labels.txt"), []byte(labels), 0o644); err != nil {
		t.Fatal(err)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(to)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// servableImages returns n random HWC RGB 0–255 images of side size.
func servableImages(n, size int, seed int64) []float32 {
	rng := rand.New(rand.NewSource(seed))
	out := make([]float32, n*size*size*3)
	for i := range out {
		out[i] = float32(rng.Intn(256))
	}
	return out
}

func closeEnough(a, b []float32, tol float64) (int, bool) {
	if len(a) != len(b) {
		return -1, false
	}
	for i := range a {
		if math.Abs(float64(a[i]-b[i])) > tol {
			return i, false
		}
	}
	return 0, true
}

// A run folder serves its checkpoint: best when there is one, last
// otherwise; predictions are the Predictor's; encoded images go through the
// training pipeline's decode and resize.
func TestOpenServableRunFolder(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "myrun")
	ig, prefix := servableRun(t, dir)
	m, err := graphs.OpenServable(dir, "best", runs.SessionConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if m.Name() != "myrun" || m.Version() != 2 || m.InputSize() != 150 || m.Kind() != graphs.KindRun || m.DecodesInGraph() {
		t.Errorf("name %q version %d size %d kind %q in-graph %v; want myrun 2 150 run false", m.Name(), m.Version(), m.InputSize(), m.Kind(), m.DecodesInGraph())
	}
	if got := strings.Join(m.Classes(), ","); got != strings.Join(servableClasses, ",") {
		t.Errorf("classes %s", got)
	}
	if !strings.Contains(m.Description(), "checkpoint last") {
		t.Errorf("description %q does not say the last checkpoint was used (there is no best)", m.Description())
	}

	images := servableImages(3, 150, 1)
	probs, err := m.Predict(images, 3)
	if err != nil {
		t.Fatal(err)
	}
	p, err := graphs.NewPredictor(ig, prefix, runs.SessionConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	want, _, err := p.Predict(images, 3, nil)
	if err != nil {
		t.Fatal(err)
	}
	if i, ok := closeEnough(probs, want, 0); !ok {
		t.Fatalf("Servable.Predict differs from Predictor.Predict at %d: %v vs %v", i, probs, want)
	}
	for r := 0; r < 3; r++ {
		sum := probs[3*r] + probs[3*r+1] + probs[3*r+2]
		if math.Abs(float64(sum)-1) > 1e-5 {
			t.Errorf("row %d sums to %v", r, sum)
		}
	}

	// Encoded images: PredictBytes = Predict(DecodeImage).
	files := [][]byte{augmenttest.PNG(0, 40, 1), augmenttest.PNG(2, 200, 2)}
	byBytes, err := m.PredictBytes(files)
	if err != nil {
		t.Fatal(err)
	}
	var pixels []float32
	for _, f := range files {
		px, err := m.DecodeImage(f)
		if err != nil {
			t.Fatal(err)
		}
		pixels = append(pixels, px...)
	}
	byPixels, err := m.Predict(pixels, 2)
	if err != nil {
		t.Fatal(err)
	}
	if i, ok := closeEnough(byBytes, byPixels, 0); !ok {
		t.Errorf("PredictBytes differs from Predict(DecodeImage) at %d: %v vs %v", i, byBytes, byPixels)
	}

	sigs := m.Signatures()
	def, ok := sigs["serving_default"]
	if !ok || def.Inputs["images"].DTypeName() != "DT_FLOAT" || len(def.Inputs["images"].Shape) != 4 || def.Inputs["images"].Shape[1] != 150 {
		t.Errorf("serving_default: %+v", def)
	}
	if o := def.Outputs["probabilities"]; o.DTypeName() != "DT_FLOAT" || len(o.Shape) != 2 || o.Shape[1] != 3 || o.Name == "" {
		t.Errorf("probabilities: %+v", o)
	}
	if o := def.Outputs["class_names"]; o.DTypeName() != "DT_STRING" {
		t.Errorf("class_names: %+v", o)
	}
	if b, ok := sigs["serving_bytes"]; !ok || b.Inputs["image_bytes"].DTypeName() != "DT_STRING" {
		t.Errorf("serving_bytes: %+v", b)
	}

	// Bad inputs are errors, not panics.
	if _, err := m.Predict(images[:100], 1); err == nil {
		t.Error("Predict accepted 100 values for a 150×150×3 image")
	}
	if _, err := m.PredictBytes([][]byte{[]byte("not an image")}); !errors.Is(err, augment.ErrNotImage) {
		t.Errorf("PredictBytes(text) = %v, want ErrNotImage", err)
	}
	bomb := augmenttest.PNGBomb(20000, 20000)
	if format, err := m.CheckImage(files[1]); err != nil || format != "png" {
		t.Errorf("CheckImage(PNG) = %q, %v", format, err)
	}
	if _, err := m.CheckImage(bomb); !errors.Is(err, augment.ErrTooLarge) {
		t.Errorf("CheckImage(20000×20000 PNG) = %v, want ErrTooLarge", err)
	}
	if _, err := m.PredictBytes([][]byte{files[0], bomb}); !errors.Is(err, augment.ErrTooLarge) || !strings.Contains(err.Error(), "image 1") {
		t.Errorf("PredictBytes(bomb) = %v, want ErrTooLarge naming image 1", err)
	}
	truncated := files[1][:len(files[1])/2]
	if _, err := m.PredictBytes([][]byte{truncated}); err == nil || !strings.Contains(err.Error(), "truncated") {
		t.Errorf("PredictBytes(truncated PNG) = %v, want a truncation error", err)
	}

	// The explicit name wins; a missing one is an error.
	if _, err := graphs.OpenServable(dir, "nosuch", runs.SessionConfig{}); err == nil || !strings.Contains(err.Error(), "no checkpoint") {
		t.Errorf("OpenServable(checkpoint nosuch) = %v", err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Predict(images[:150*150*3], 1); err == nil {
		t.Error("Predict after Close succeeded")
	}
}

func TestOpenServableErrors(t *testing.T) {
	base := t.TempDir()
	empty := filepath.Join(base, "empty")
	os.Mkdir(empty, 0o755)
	file := filepath.Join(base, "file.txt")
	os.WriteFile(file, []byte("x"), 0o644)
	for _, p := range []string{empty, file} {
		_, err := graphs.OpenServable(p, "", runs.SessionConfig{})
		if want := p + " is neither a run folder (config.json) nor a SavedModel (saved_model.pb)"; err == nil || err.Error() != want {
			t.Errorf("OpenServable(%s) = %v, want %q", p, err, want)
		}
	}
	if _, err := graphs.OpenServable(filepath.Join(base, "absent"), "", runs.SessionConfig{}); err == nil || !strings.Contains(err.Error(), "absent") {
		t.Errorf("OpenServable(absent) = %v", err)
	}

	// A run with config.json but no checkpoint yet.
	run := filepath.Join(base, "fresh")
	if _, err := runs.Create(run, runs.Config{Network: "vgg8", InputSize: 150, Classes: servableClasses, Std: [3]float32{1, 1, 1}}); err != nil {
		t.Fatal(err)
	}
	_, err := graphs.OpenServable(run, "", runs.SessionConfig{})
	var untrained *graphs.UntrainedRunError
	if !errors.As(err, &untrained) || untrained.Dir != run || !errors.Is(err, runs.ErrNoCheckpoint) ||
		!strings.Contains(err.Error(), "has no checkpoint to serve") || !strings.Contains(err.Error(), run) {
		t.Errorf("OpenServable(run without checkpoint) = %v, want an UntrainedRunError", err)
	}

	// Version folders none of which is complete.
	versions := filepath.Join(base, "export")
	os.MkdirAll(filepath.Join(versions, "1", "variables"), 0o755)
	if _, err := graphs.OpenServable(versions, "", runs.SessionConfig{}); err == nil || !strings.Contains(err.Error(), "none holds a saved_model.pb") {
		t.Errorf("OpenServable(incomplete export) = %v", err)
	}

	// A SavedModel whose labels do not match its outputs.
	dir := filepath.Join(base, "r")
	ig, prefix := servableRun(t, dir)
	bad := filepath.Join(base, "bad", "1")
	servableSavedModel(t, ig, prefix, bad)
	os.WriteFile(filepath.Join(bad, "assets", "labels.txt"), []byte("a\nb\n"), 0o644)
	if _, err := graphs.OpenServable(bad, "", runs.SessionConfig{}); err == nil || !strings.Contains(err.Error(), "names 2 classes but the model outputs 3") {
		t.Errorf("OpenServable(SavedModel with 2 labels) = %v", err)
	}
}

// A SavedModel base folder serves its highest complete version, with the
// run's predictions, its labels as classes and its signature's input size.
func TestOpenServableSavedModel(t *testing.T) {
	base := t.TempDir()
	run := filepath.Join(base, "run")
	ig, prefix := servableRun(t, run)
	export := filepath.Join(base, "fashion")
	servableSavedModel(t, ig, prefix, filepath.Join(export, "1"))
	servableSavedModel(t, ig, prefix, filepath.Join(export, "3"))
	os.MkdirAll(filepath.Join(export, "12", "variables"), 0o755) // an export in progress
	os.MkdirAll(filepath.Join(export, "tmp-99"), 0o755)

	m, err := graphs.OpenServable(export, "", runs.SessionConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if m.Name() != "fashion" || m.Version() != 3 || m.InputSize() != 150 || m.Kind() != graphs.KindSavedModel || m.DecodesInGraph() {
		t.Errorf("name %q version %d size %d kind %q in-graph %v; want fashion 3 150 savedmodel false", m.Name(), m.Version(), m.InputSize(), m.Kind(), m.DecodesInGraph())
	}
	if got := strings.Join(m.Classes(), ","); got != strings.Join(servableClasses, ",") {
		t.Errorf("classes %s", got)
	}
	r, err := graphs.OpenServable(run, "", runs.SessionConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	samePredictions(t, "SavedModel and run folder", m, r, servableImages(2, 150, 9),
		[][]byte{augmenttest.PNG(1, 64, 3)}, 1e-6, 1e-6)
	sigs := m.Signatures()
	if s := sigs["serving_default"]; s.MethodName != "tensorflow/serving/predict" || s.Inputs["images"].Name == "" {
		t.Errorf("serving_default: %+v", s)
	}
	if _, ok := sigs["serving_bytes"]; !ok {
		t.Error("no serving_bytes signature (emulated in Go for SavedModels without one)")
	}

	// The version folder itself loads too, as version 1.
	v1, err := graphs.OpenServable(filepath.Join(export, "1"), "", runs.SessionConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer v1.Close()
	if v1.Version() != 1 || v1.Name() != "fashion" {
		t.Errorf("EXPORT/1: name %q version %d", v1.Name(), v1.Version())
	}
}

// kfash-tf's own exporter (graphs/savedmodel.go, `kfash-tf export`), when
// it is there: its SavedModel decodes images in the graph (serving_bytes)
// and agrees with the run folder.
func TestOpenServableExported(t *testing.T) {
	if _, err := os.Stat("savedmodel.go"); err != nil {
		t.Skip("graphs/savedmodel.go is absent: no exporter to test against")
	}
	bin := os.Getenv("KFASH_TF_BIN")
	if bin == "" {
		t.Skip("KFASH_TF_BIN is not set (make test sets it)")
	}
	base := t.TempDir()
	run := filepath.Join(base, "run")
	servableRun(t, run)
	export := filepath.Join(base, "export")
	out, err := exec.Command(bin, "export", run, "--out", export).CombinedOutput()
	if err != nil {
		t.Skipf("kfash-tf export %s --out %s failed (its interface may differ): %v\n%s", run, export, err, out)
	}
	m, err := graphs.OpenServable(export, "", runs.SessionConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	r, err := graphs.OpenServable(run, "", runs.SessionConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if !m.DecodesInGraph() {
		t.Error("the exported SavedModel has no serving_bytes signature")
	}
	if strings.Join(m.Classes(), ",") != strings.Join(r.Classes(), ",") || m.InputSize() != r.InputSize() {
		t.Errorf("export: classes %v size %d; run: %v %d", m.Classes(), m.InputSize(), r.Classes(), r.InputSize())
	}
	// In-graph decoding (serving_bytes) resizes like the Go pipeline, up
	// to rounding: hence the looser tolerance for encoded images.
	files := [][]byte{augmenttest.PNG(0, 40, 1), augmenttest.PNG(2, 200, 2)}
	samePredictions(t, "exported SavedModel and run folder", m, r, servableImages(2, 150, 4), files, 1e-5, 1e-2)
	if _, err := m.PredictBytes([][]byte{augmenttest.PNGBomb(20000, 20000)}); !errors.Is(err, augment.ErrTooLarge) {
		t.Errorf("in-graph PredictBytes(bomb) = %v, want ErrTooLarge before TensorFlow sees it", err)
	}
	if _, err := m.PredictBytes([][]byte{files[1][:len(files[1])/2]}); err == nil {
		t.Error("in-graph PredictBytes accepted a truncated PNG")
	}
}

// samePredictions checks that two opened models agree: on decoded images
// (Predict) within tolImages, on encoded files (PredictBytes) within
// tolFiles. what names the pair in failures.
func samePredictions(t *testing.T, what string, m, r *graphs.Servable, images []float32, files [][]byte, tolImages, tolFiles float64) {
	t.Helper()
	n := len(images) / (m.InputSize() * m.InputSize() * 3)
	a, err := m.Predict(images, n)
	if err != nil {
		t.Fatal(err)
	}
	b, err := r.Predict(images, n)
	if err != nil {
		t.Fatal(err)
	}
	if i, ok := closeEnough(a, b, tolImages); !ok {
		t.Errorf("Predict: %s differ at %d: %v vs %v", what, i, a, b)
	}
	if a, err = m.PredictBytes(files); err != nil {
		t.Fatal(err)
	}
	if b, err = r.PredictBytes(files); err != nil {
		t.Fatal(err)
	}
	if i, ok := closeEnough(a, b, tolFiles); !ok {
		t.Errorf("PredictBytes: %s differ at %d: %v vs %v", what, i, a, b)
	}
}
