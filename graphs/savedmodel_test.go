package graphs

import (
	"errors"
	"io/fs"
	"math"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	tf "github.com/galeone/tensorflow/tensorflow/go"
	varpb "github.com/galeone/tensorflow/tensorflow/go/core/framework/variable_go_proto"
	pb "github.com/galeone/tensorflow/tensorflow/go/core/protobuf/for_core_protos_go_proto"
	"google.golang.org/protobuf/proto"

	"github.com/kfash-tf/kfash-tf/augment/augmenttest"
	"github.com/kfash-tf/kfash-tf/graphs/runs"
	"github.com/kfash-tf/kfash-tf/tfops"
)

var exportClasses = []string{"circle", "square", "stripe"}

func exportConfig(seed int64) runs.Config {
	return runs.Config{Network: "vgg8", InputSize: 150, Classes: exportClasses, Normalize: "unit",
		Std: [3]float32{255, 255, 255}, Seed: seed, Created: time.Now()}
}

// writeCheckpoint stores freshly initialised weights of cfg (its seed picks
// them) in the run's checkpoint names at epoch.
func writeCheckpoint(t *testing.T, run runs.Run, cfg runs.Config, epoch int, names ...string) {
	t.Helper()
	ig, err := BuildInferenceGraph(cfg)
	if err != nil {
		t.Fatal(err)
	}
	sess, err := NewSession(ig.Graph, runs.SessionConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	if _, err := sess.Run(nil, nil, ig.Store.InitOps()); err != nil {
		t.Fatal(err)
	}
	st := runs.CheckpointState{Epoch: epoch, Step: int64(10 * epoch), Metrics: map[string]float64{"val_acc": 0.5}, Time: time.Now()}
	if err := run.Checkpoints().WriteWith(ig.Saver.SaveFunc(sess), names, st); err != nil {
		t.Fatal(err)
	}
}

// exportRun makes a run whose "best" (epoch 1) and "last" (epoch 2)
// checkpoints hold different weights.
func exportRun(t *testing.T) (runs.Run, runs.Config) {
	t.Helper()
	cfg := exportConfig(5)
	run, err := runs.Create(filepath.Join(t.TempDir(), "run"), cfg)
	if err != nil {
		t.Fatal(err)
	}
	writeCheckpoint(t, run, cfg, 1, "best", "last")
	writeCheckpoint(t, run, exportConfig(6), 2, "last")
	return run, cfg
}

// goPredict runs the run's checkpoint through an InferenceGraph and a
// Predictor: what the SavedModel must reproduce.
func goPredict(t *testing.T, run runs.Run, cfg runs.Config, checkpoint string, images []float32, n int) []float32 {
	t.Helper()
	prefix, _, err := run.Checkpoints().Resolve(checkpoint)
	if err != nil {
		t.Fatal(err)
	}
	ig, err := BuildInferenceGraph(cfg)
	if err != nil {
		t.Fatal(err)
	}
	p, err := NewPredictor(ig, prefix, runs.SessionConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	probs, _, err := p.Predict(images, n, nil)
	if err != nil {
		t.Fatal(err)
	}
	return probs
}

func randomImages(n, size int, seed int64) []float32 {
	rng := rand.New(rand.NewSource(seed))
	px := make([]float32, n*size*size*3)
	for i := range px {
		px[i] = float32(rng.Intn(256))
	}
	return px
}

func maxAbsDiff(t *testing.T, a, b []float32) float64 {
	t.Helper()
	if len(a) != len(b) {
		t.Fatalf("%d values vs %d", len(a), len(b))
	}
	m := 0.0
	for i := range a {
		d := math.Abs(float64(a[i] - b[i]))
		if math.IsNaN(d) {
			return math.Inf(1)
		}
		m = math.Max(m, d)
	}
	return m
}

func loadSavedModel(t *testing.T, dir string) *tf.SavedModel {
	t.Helper()
	sm, err := tf.LoadSavedModel(dir, []string{ServeTag}, nil)
	if err != nil {
		t.Fatalf("tf.LoadSavedModel(%s): %v", dir, err)
	}
	t.Cleanup(func() { sm.Session.Close() })
	return sm
}

func readSavedModel(t *testing.T, dir string) *pb.SavedModel {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "saved_model.pb"))
	if err != nil {
		t.Fatal(err)
	}
	sm := &pb.SavedModel{}
	if err := proto.Unmarshal(data, sm); err != nil {
		t.Fatal(err)
	}
	return sm
}

// The export holds what TensorFlow's loaders need, and TensorFlow's C++
// loader (Go's tf.LoadSavedModel) gives the run's probabilities through
// both signatures.
func TestExportSavedModel(t *testing.T) {
	run, cfg := exportRun(t)
	out := filepath.Join(t.TempDir(), "export")
	res, err := ExportSavedModel(run.Dir, out, ExportOptions{Program: "test"})
	if err != nil {
		t.Fatal(err)
	}
	v1 := filepath.Join(out, "1")
	if res.Dir != v1 || res.Checkpoint != "best" || res.State.Epoch != 1 || res.Network != "vgg8" {
		t.Errorf("result %+v: want dir %s, checkpoint best at epoch 1", res, v1)
	}
	if res.CheckDiff > checkTolerance {
		t.Errorf("self-check difference %g", res.CheckDiff)
	}
	t.Logf("export self-check: max |Δp| = %g", res.CheckDiff)

	// Layout: nothing else in OUT, a readable version folder, the labels.
	entries, _ := os.ReadDir(out)
	if len(entries) != 1 || entries[0].Name() != "1" {
		t.Errorf("%s holds %v, want only 1/", out, entries)
	}
	if fi, err := os.Stat(v1); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("%s: %v, mode %v; want 0755", v1, err, fi.Mode())
	}
	for _, f := range []string{"saved_model.pb", "variables/variables.index", "variables/variables.data-00000-of-00001"} {
		if _, err := os.Stat(filepath.Join(v1, f)); err != nil {
			t.Error(err)
		}
	}
	labels, err := os.ReadFile(filepath.Join(v1, LabelsAsset))
	if string(labels) != "circle\nsquare\nstripe\n" {
		t.Errorf("%s = %q, %v", LabelsAsset, labels, err)
	}

	// The proto: what Python's loader insists on.
	sm := readSavedModel(t, v1)
	if sm.SavedModelSchemaVersion != 1 || len(sm.MetaGraphs) != 1 {
		t.Fatalf("schema %d, %d meta graphs", sm.SavedModelSchemaVersion, len(sm.MetaGraphs))
	}
	mg := sm.MetaGraphs[0]
	if tags := mg.MetaInfoDef.GetTags(); len(tags) != 1 || tags[0] != "serve" {
		t.Errorf("tags %v", tags)
	}
	sd := mg.SaverDef
	if sd.GetFilenameTensorName() == "" || sd.GetSaveTensorName() == "" || sd.GetRestoreOpName() == "" || sd.GetVersion() != pb.SaverDef_V2 {
		t.Errorf("incomplete saver_def %v", sd)
	}
	if mg.GraphDef.GetLibrary() == nil || len(mg.GraphDef.Library.Function) != 4 {
		t.Errorf("graph library: %v functions, want the decoder's 4", len(mg.GraphDef.GetLibrary().GetFunction()))
	}
	vars := mg.CollectionDef["variables"].GetBytesList().GetValue()
	if len(vars) != res.Variables || res.Variables == 0 {
		t.Errorf("variables collection has %d entries, the export %d variables", len(vars), res.Variables)
	}
	for _, raw := range vars {
		vd := &varpb.VariableDef{}
		if err := proto.Unmarshal(raw, vd); err != nil || !vd.IsResource || vd.SnapshotName == "" || vd.InitializerName == "" {
			t.Errorf("variable def %v: %v", vd, err)
		}
	}
	for _, sig := range []string{SignatureImages, SignatureBytes} {
		s := mg.SignatureDef[sig]
		if s.GetMethodName() != PredictMethod || len(s.GetInputs()) != 1 || len(s.GetOutputs()) != 3 {
			t.Errorf("signature %s: %v", sig, s)
		}
	}

	// C++ loader, serving_default: the run's probabilities.
	loaded := loadSavedModel(t, v1)
	const n = 3
	images := randomImages(n, 150, 9)
	want := goPredict(t, run, cfg, "best", images, n)
	x, err := tfops.Float32Tensor(images, []int64{n, 150, 150, 3})
	if err != nil {
		t.Fatal(err)
	}
	got, err := runSignature(loaded, SignatureImages, InputImages, x)
	if err != nil {
		t.Fatal(err)
	}
	d := maxAbsDiff(t, got, want)
	t.Logf("serving_default (tf.LoadSavedModel) vs Go Predictor: max |Δp| = %g", d)
	if d > 1e-5 {
		t.Errorf("serving_default differs from the run by %g", d)
	}

	// serving_bytes: images of other sizes and formats. Against the network
	// fed with the in-graph decoder's own pixels it must agree to float
	// precision; against the Go pipeline the pixels differ by ≤1 level (the
	// resize's rounding), and so the probabilities barely.
	files := [][]byte{
		encodeImage(t, "png", augmenttest.Noise(40, 30, 1)),
		encodeImage(t, "jpeg", augmenttest.Noise(300, 200, 2)),
		encodeImage(t, "gif", augmenttest.Noise(120, 160, 3)),
	}
	strs := make([]string, len(files))
	var goPx []float32
	for i, f := range files {
		strs[i] = string(f)
		goPx = append(goPx, goPixels(t, f, 150)...)
	}
	enc, err := tf.NewTensor(strs)
	if err != nil {
		t.Fatal(err)
	}
	got, err = runSignature(loaded, SignatureBytes, InputImageBytes, enc)
	if err != nil {
		t.Fatal(err)
	}
	tfPx, err := newDecoder(t, 150).decode(files)
	if err != nil {
		t.Fatal(err)
	}
	if d := maxAbsDiff(t, got, goPredict(t, run, cfg, "best", tfPx, len(files))); d > 1e-5 {
		t.Errorf("serving_bytes differs from the network on the decoder's pixels by %g", d)
	}
	d = maxAbsDiff(t, got, goPredict(t, run, cfg, "best", goPx, len(files)))
	t.Logf("serving_bytes vs Go decode+resize+Predictor (PNG, JPEG, GIF): max |Δp| = %g", d)
	if d > 1e-2 {
		t.Errorf("serving_bytes differs from the Go pipeline by %g", d)
	}

	// Another version from "last": other weights, v1 untouched.
	before, _ := os.Stat(filepath.Join(v1, "saved_model.pb"))
	res2, err := ExportSavedModel(run.Dir, out, ExportOptions{Checkpoint: "last", Version: 2})
	if err != nil {
		t.Fatal(err)
	}
	if res2.Checkpoint != "last" || res2.State.Epoch != 2 || res2.Dir != filepath.Join(out, "2") {
		t.Errorf("second export %+v", res2)
	}
	got2, err := runSignature(loadSavedModel(t, res2.Dir), SignatureImages, InputImages, x)
	if err != nil {
		t.Fatal(err)
	}
	if d := maxAbsDiff(t, got2, goPredict(t, run, cfg, "last", images, n)); d > 1e-5 {
		t.Errorf("version 2 differs from the last checkpoint by %g", d)
	}
	if maxAbsDiff(t, got2, want) < 1e-4 {
		t.Error("versions 1 (best) and 2 (last) give the same probabilities: the checkpoint choice was ignored")
	}

	// Never overwritten.
	_, err = ExportSavedModel(run.Dir, out, ExportOptions{})
	var exists *ExportExistsError
	if !errors.As(err, &exists) || exists.Path != v1 || !errors.Is(err, fs.ErrExist) || err.Error() != v1+" already exists" {
		t.Errorf("exporting onto %s: %v, want an ExportExistsError naming it", v1, err)
	}
	after, _ := os.Stat(filepath.Join(v1, "saved_model.pb"))
	if !after.ModTime().Equal(before.ModTime()) {
		t.Error("version 1 was rewritten")
	}
	if entries, _ := os.ReadDir(out); len(entries) != 2 {
		t.Errorf("%s holds %d entries after the refusal, want 1/ and 2/ only", out, len(entries))
	}
}

func TestExportErrors(t *testing.T) {
	base := t.TempDir()
	out := filepath.Join(base, "export")

	fresh, err := runs.Create(filepath.Join(base, "fresh"), exportConfig(1))
	if err != nil {
		t.Fatal(err)
	}
	_, err = ExportSavedModel(fresh.Dir, out, ExportOptions{})
	if err == nil || !strings.Contains(err.Error(), "has no checkpoint yet: train it first") || !strings.Contains(err.Error(), fresh.Dir) {
		t.Errorf("run without checkpoint: %v", err)
	}

	// Only "last": the default falls back to it, an explicit best says so.
	lastOnly, err := runs.Create(filepath.Join(base, "last-only"), exportConfig(1))
	if err != nil {
		t.Fatal(err)
	}
	writeCheckpoint(t, lastOnly, exportConfig(1), 1, "last")
	_, err = ExportSavedModel(lastOnly.Dir, out, ExportOptions{Checkpoint: "best"})
	var missing *MissingCheckpointError
	if !errors.As(err, &missing) || missing.Dir != lastOnly.Dir || missing.Checkpoint != "best" || !errors.Is(err, runs.ErrNoCheckpoint) ||
		!strings.Contains(err.Error(), "no 'best' checkpoint") {
		t.Errorf("checkpoint best without best: %v, want a MissingCheckpointError", err)
	}
	if res, err := ExportSavedModel(lastOnly.Dir, out, ExportOptions{}); err != nil || res.Checkpoint != "last" {
		t.Errorf("default checkpoint without best: %+v, %v; want last", res, err)
	}

	if _, err := ExportSavedModel(filepath.Join(base, "nothing"), out, ExportOptions{}); err == nil || !strings.Contains(err.Error(), "not a run folder") {
		t.Errorf("missing run: %v", err)
	}
	if _, err := ExportSavedModel(lastOnly.Dir, out, ExportOptions{Version: -1}); err == nil {
		t.Error("negative version accepted")
	}
	// Failed exports leave nothing behind.
	if entries, _ := os.ReadDir(out); len(entries) != 1 {
		t.Errorf("%s holds %v, want only the one successful export", out, entries)
	}
}
