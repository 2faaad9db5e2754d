package main

import (
	"bytes"
	bin "encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	tf "github.com/galeone/tensorflow/tensorflow/go"

	"github.com/kfash-tf/kfash-tf/augment"
	"github.com/kfash-tf/kfash-tf/graphs"
	"github.com/kfash-tf/kfash-tf/graphs/runs"
	"github.com/kfash-tf/kfash-tf/tfops"
)

// repoRoot is the repository, seen from this package's folder.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// pythonTF returns the python of the tensorflow-cpu virtualenv that
// scripts/pyenv.sh makes (and caches): it skips only where python3 is not
// installed at all, and fails with pip's reason otherwise.
func pythonTF(t *testing.T) string {
	t.Helper()
	start := time.Now()
	cmd := exec.Command("bash", filepath.Join(repoRoot(t), "scripts", "pyenv.sh"))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.ExitCode() == 2 {
		t.Skipf("SavedModel interop checks skipped: %s", strings.TrimSpace(stderr.String()))
	}
	if err != nil {
		t.Fatalf("scripts/pyenv.sh could not make the tensorflow-cpu virtualenv: %v\n%s", err, tail(stderr.String(), 40))
	}
	t.Logf("scripts/pyenv.sh: %s", time.Since(start).Round(time.Millisecond))
	return strings.TrimSpace(stdout.String())
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// writeNpy writes a float32 array as a NumPy .npy file (format 1.0).
func writeNpy(path string, data []float32, shape ...int) error {
	dims := make([]string, len(shape))
	for i, d := range shape {
		dims[i] = strconv.Itoa(d)
	}
	header := fmt.Sprintf("{'descr': '<f4', 'fortran_order': False, 'shape': (%s,), }", strings.Join(dims, ", "))
	// magic (6) + version (2) + length (2) + header + '\n', a multiple of 64.
	pad := 64 - (10+len(header)+1)%64
	header += strings.Repeat(" ", pad%64) + "\n"
	var buf bytes.Buffer
	buf.WriteString("\x93NUMPY\x01\x00")
	bin.Write(&buf, bin.LittleEndian, uint16(len(header)))
	buf.WriteString(header)
	bin.Write(&buf, bin.LittleEndian, data)
	return os.WriteFile(path, buf.Bytes(), 0o644)
}

// readNpy reads a little-endian float32 .npy file written by NumPy.
func readNpy(path string) ([]float32, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(raw) < 10 || string(raw[:6]) != "\x93NUMPY" {
		return nil, fmt.Errorf("%s: not a .npy file", path)
	}
	var hlen, off int
	switch raw[6] {
	case 1:
		hlen, off = int(bin.LittleEndian.Uint16(raw[8:10])), 10
	default:
		hlen, off = int(bin.LittleEndian.Uint32(raw[8:12])), 12
	}
	header := string(raw[off : off+hlen])
	if !strings.Contains(header, "'descr': '<f4'") || strings.Contains(header, "'fortran_order': True") {
		return nil, fmt.Errorf("%s: want a C-order float32 array, header %s", path, header)
	}
	body := raw[off+hlen:]
	out := make([]float32, len(body)/4)
	err = bin.Read(bytes.NewReader(body), bin.LittleEndian, out)
	return out, err
}

func maxDiff(t *testing.T, what string, a, b []float32) float64 {
	t.Helper()
	if len(a) != len(b) {
		t.Fatalf("%s: %d values vs %d", what, len(a), len(b))
	}
	m := 0.0
	for i := range a {
		d := math.Abs(float64(a[i] - b[i]))
		if math.IsNaN(d) {
			d = math.Inf(1)
		}
		m = math.Max(m, d)
	}
	return m
}

func flatten(rows [][]float32) []float32 {
	var out []float32
	for _, r := range rows {
		out = append(out, r...)
	}
	return out
}

// savedModelProbs runs a signature of a SavedModel loaded by Go.
func savedModelProbs(t *testing.T, sm *tf.SavedModel, sig, input string, value *tf.Tensor) []float32 {
	t.Helper()
	s, ok := sm.Signatures[sig]
	if !ok {
		t.Fatalf("Go-loaded SavedModel has no signature %s", sig)
	}
	op := func(name string) tf.Output {
		n, idx, _ := strings.Cut(name, ":")
		k, _ := strconv.Atoi(idx)
		o := sm.Graph.Operation(n)
		if o == nil {
			t.Fatalf("signature %s names %s, which is not in the graph", sig, name)
		}
		return o.Output(k)
	}
	out, err := sm.Session.Run(map[tf.Output]*tf.Tensor{op(s.Inputs[input].Name): value},
		[]tf.Output{op(s.Outputs[graphs.OutputProbabilities].Name)}, nil)
	if err != nil {
		t.Fatalf("signature %s: %v", sig, err)
	}
	p, err := tfops.Float32s(out[0])
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// interopReport is what scripts/interop_check.py prints.
type interopReport struct {
	TensorFlow string `json:"tensorflow"`
	Signatures map[string]struct {
		Inputs  map[string]tensorSpec `json:"inputs"`
		Outputs map[string]tensorSpec `json:"outputs"`
	} `json:"signatures"`
	Variables      []string       `json:"variables"`
	Assets         []string       `json:"assets"`
	ServingDefault *interopOutput `json:"serving_default"`
	ServingBytes   *interopOutput `json:"serving_bytes"`
	Explain        *struct {
		Probabilities [][]float32   `json:"probabilities"`
		Target        []int32       `json:"target"`
		Map           [][][]float32 `json:"map"`
		Network       []string      `json:"network"`
		Layer         []string      `json:"layer"`
	} `json:"explain"`
}

type tensorSpec struct {
	DType string `json:"dtype"`
	Shape []int  `json:"shape"`
}

type interopOutput struct {
	Probabilities [][]float32 `json:"probabilities"`
	Classes       []int64     `json:"classes"`
	ClassNames    []string    `json:"class_names"`
}

// A tiny trained run, exported by the binary, gives the run's own
// probabilities (Go InferenceGraph + Predictor) through every loader:
// Python's tf.saved_model.load (all three signatures, explain's maps against
// the Go Explainer), saved_model_cli run, and Go's tf.LoadSavedModel;
// saved_model_cli show lists the signatures.
func TestExportInterop(t *testing.T) {
	binary(t)
	python := pythonTF(t)
	cli := filepath.Join(filepath.Dir(python), "saved_model_cli")

	data := tinyDataset(t, 8, 3)
	base := t.TempDir()
	runDir, exportDir := filepath.Join(base, "run"), filepath.Join(base, "export")
	mustRun(t, "train", "vgg8", "--data", data, "--epochs", "1", "--batch-size", "8", "--out", runDir, "--seed", "3")
	stdout, stderr, code := run(t, "export", runDir, "--out", exportDir, "--format", "json")
	if code != 0 {
		t.Fatalf("kfash-tf export: exit %d\n%s", code, stderr)
	}
	var rep struct {
		Dir       string   `json:"dir"`
		Classes   []string `json:"classes"`
		Variables int      `json:"variables"`
		InputSize int      `json:"input_size"`
	}
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("export --format json: %v\n%s", err, stdout)
	}
	model := filepath.Join(exportDir, "1")
	if rep.Dir != model || rep.InputSize != 150 || len(rep.Classes) != 3 {
		t.Fatalf("export report %+v", rep)
	}

	// The Go side: the run's best checkpoint in an InferenceGraph, fed
	// the validation images through the Go pipeline.
	r, cfg, err := runs.Open(runDir)
	if err != nil {
		t.Fatal(err)
	}
	prefix, _, err := r.Checkpoints().Resolve("best")
	if err != nil {
		t.Fatal(err)
	}
	ig, err := graphs.BuildInferenceGraph(cfg)
	if err != nil {
		t.Fatal(err)
	}
	pred, err := graphs.NewPredictor(ig, prefix, runs.SessionConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer pred.Close()
	files, _ := filepath.Glob(filepath.Join(data, "Validation", "*", "*.png"))
	if len(files) != 9 {
		t.Fatalf("%d validation images, want 9", len(files))
	}
	const size = 150
	n := len(files)
	images := make([]float32, n*size*size*3)
	for i, f := range files {
		img, err := augment.DecodeFile(f)
		if err != nil {
			t.Fatal(err)
		}
		small, err := augment.Resize(img, size)
		if err != nil {
			t.Fatal(err)
		}
		if err := augment.ToFloat32(small, images[i*size*size*3:(i+1)*size*size*3]); err != nil {
			t.Fatal(err)
		}
	}
	want, _, err := pred.Predict(images, n, nil)
	if err != nil {
		t.Fatal(err)
	}
	npy := filepath.Join(base, "images.npy")
	if err := writeNpy(npy, images, n, size, size, 3); err != nil {
		t.Fatal(err)
	}

	// (a) Python's tf.saved_model.load, both signatures.
	start := time.Now()
	args := append([]string{filepath.Join(repoRoot(t), "scripts", "interop_check.py"), "--dir", model, "--images", npy, "--bytes"}, files...)
	cmd := exec.Command(python, args...)
	var pyOut, pyErr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &pyOut, &pyErr
	if err := cmd.Run(); err != nil {
		t.Fatalf("interop_check.py: %v\n%s", err, tail(pyErr.String(), 30))
	}
	t.Logf("interop_check.py: %s", time.Since(start).Round(10*time.Millisecond))
	var py interopReport
	if err := json.Unmarshal(pyOut.Bytes(), &py); err != nil {
		t.Fatalf("interop_check.py output: %v\n%s", err, pyOut.String())
	}
	if py.TensorFlow != "2.18.1" {
		t.Errorf("python TensorFlow %s, want 2.18.1", py.TensorFlow)
	}
	for sig, input := range map[string]tensorSpec{
		graphs.SignatureImages: {"float32", []int{-1, size, size, 3}},
		graphs.SignatureBytes:  {"string", []int{-1}},
	} {
		s, ok := py.Signatures[sig]
		if !ok {
			t.Errorf("tf.saved_model.load sees no %s signature (has %v)", sig, py.Signatures)
			continue
		}
		for _, in := range s.Inputs {
			if in.DType != input.DType || fmt.Sprint(in.Shape) != fmt.Sprint(input.Shape) || len(s.Inputs) != 1 {
				t.Errorf("%s inputs %v, want one %v", sig, s.Inputs, input)
			}
		}
		if p := s.Outputs[graphs.OutputProbabilities]; p.DType != "float32" || fmt.Sprint(p.Shape) != "[-1 3]" ||
			s.Outputs[graphs.OutputClasses].DType != "int64" || s.Outputs[graphs.OutputClassNames].DType != "string" {
			t.Errorf("%s outputs %v", sig, s.Outputs)
		}
	}
	if len(py.Variables) != rep.Variables || len(py.Assets) != 1 || py.Assets[0] != "labels.txt" {
		t.Errorf("python sees %d variables (export wrote %d) and assets %v", len(py.Variables), rep.Variables, py.Assets)
	}
	if py.ServingDefault == nil || py.ServingBytes == nil {
		t.Fatalf("interop_check.py ran no signature: %s", pyOut.String())
	}
	d := maxDiff(t, "python serving_default", flatten(py.ServingDefault.Probabilities), want)
	t.Logf("(a) tf.saved_model.load serving_default vs Go Predictor: max |Δp| = %.3g", d)
	if d > 1e-5 {
		t.Errorf("python serving_default differs from the Go side by %g", d)
	}
	for i, c := range py.ServingDefault.Classes {
		if py.ServingDefault.ClassNames[i] != cfg.Classes[c] {
			t.Errorf("example %d: class %d named %q, want %q", i, c, py.ServingDefault.ClassNames[i], cfg.Classes[c])
		}
	}

	// (a) Python's explain signature against the run folder's Explainer:
	// the same Grad-CAM maps, class and layer.
	if py.Explain == nil {
		t.Fatalf("interop_check.py ran no %s signature: the export lacks it", graphs.SignatureExplain)
	}
	rs, err := graphs.OpenServable(runDir, "best", runs.SessionConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	ex, err := graphs.NewExplainer(rs, "")
	if err != nil {
		t.Fatal(err)
	}
	goCAM, err := ex.Explain(images, n, nil)
	if err != nil {
		t.Fatal(err)
	}
	var goMaps []float32
	var pyMaps []float32
	for i, e := range goCAM {
		goMaps = append(goMaps, e.Map...)
		if i < len(py.Explain.Map) {
			pyMaps = append(pyMaps, flatten(py.Explain.Map[i])...)
		}
		if i >= len(py.Explain.Target) || int(py.Explain.Target[i]) != e.Target ||
			py.Explain.Layer[i] != ex.Layer() || py.Explain.Network[i] != ex.Network() {
			t.Errorf("python explain, image %d: target %v layer %v network %v; Go explains class %d at %s/%s",
				i, py.Explain.Target, py.Explain.Layer, py.Explain.Network, e.Target, ex.Network(), ex.Layer())
			break
		}
	}
	// A flat map everywhere would make the comparison vacuous.
	if slices.Max(goMaps) <= 0 {
		t.Error("every Go Grad-CAM map is flat: nothing to compare")
	}
	d = maxDiff(t, "python explain map", pyMaps, goMaps)
	t.Logf("(a) tf.saved_model.load explain vs Go Explainer: max |Δmap| = %.3g", d)
	if d > 1e-5 {
		t.Errorf("python's explain map differs from the Go Explainer's by %g", d)
	}

	// (c) Go's tf.LoadSavedModel, both signatures; serving_bytes must agree
	// with Python's exactly (the same graph), and with the Go pipeline up
	// to the ≤1-level pixel rounding of the resize.
	sm, err := tf.LoadSavedModel(model, []string{"serve"}, nil)
	if err != nil {
		t.Fatalf("tf.LoadSavedModel(%s): %v", model, err)
	}
	defer sm.Session.Close()
	x, err := tfops.Float32Tensor(images, []int64{int64(n), size, size, 3})
	if err != nil {
		t.Fatal(err)
	}
	d = maxDiff(t, "go serving_default", savedModelProbs(t, sm, graphs.SignatureImages, graphs.InputImages, x), want)
	t.Logf("(c) Go tf.LoadSavedModel serving_default vs Go Predictor: max |Δp| = %.3g", d)
	if d > 1e-5 {
		t.Errorf("Go-loaded serving_default differs from the Go side by %g", d)
	}
	encoded := make([]string, n)
	for i, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		encoded[i] = string(raw)
	}
	et, err := tf.NewTensor(encoded)
	if err != nil {
		t.Fatal(err)
	}
	goBytes := savedModelProbs(t, sm, graphs.SignatureBytes, graphs.InputImageBytes, et)
	d = maxDiff(t, "serving_bytes python vs go", flatten(py.ServingBytes.Probabilities), goBytes)
	t.Logf("(a) tf.saved_model.load serving_bytes vs Go tf.LoadSavedModel serving_bytes: max |Δp| = %.3g", d)
	if d > 1e-5 {
		t.Errorf("python and Go serving_bytes differ by %g", d)
	}
	d = maxDiff(t, "serving_bytes vs Go pipeline", goBytes, want)
	t.Logf("(c) serving_bytes (in-graph decode) vs Go decode+resize+Predictor: max |Δp| = %.3g", d)
	if d > 1e-3 {
		t.Errorf("serving_bytes differs from the Go pipeline by %g", d)
	}

	// (b) saved_model_cli show and run.
	show, err := exec.Command(cli, "show", "--dir", model, "--all").CombinedOutput()
	if err != nil {
		t.Fatalf("saved_model_cli show: %v\n%s", err, tail(string(show), 30))
	}
	for _, sig := range []string{graphs.SignatureImages, graphs.SignatureBytes, graphs.SignatureExplain} {
		if !strings.Contains(string(show), "signature_def['"+sig+"']") {
			t.Errorf("saved_model_cli show --all does not list %s:\n%s", sig, show)
		}
	}
	if !regexp.MustCompile(`inputs\['image_bytes'\][^\n]*\n\s*dtype: DT_STRING`).Match(show) {
		t.Errorf("saved_model_cli show: image_bytes is not a DT_STRING input:\n%s", show)
	}
	outdir := filepath.Join(base, "cli-out")
	runOut, err := exec.Command(cli, "run", "--dir", model, "--tag_set", "serve", "--signature_def", graphs.SignatureImages,
		"--inputs", graphs.InputImages+"="+npy, "--outdir", outdir).CombinedOutput()
	if err != nil {
		t.Fatalf("saved_model_cli run: %v\n%s", err, tail(string(runOut), 30))
	}
	cliProbs, err := readNpy(filepath.Join(outdir, graphs.OutputProbabilities+".npy"))
	if err != nil {
		t.Fatalf("saved_model_cli run output: %v\n%s", err, tail(string(runOut), 30))
	}
	d = maxDiff(t, "saved_model_cli", cliProbs, want)
	t.Logf("(b) saved_model_cli run serving_default vs Go Predictor: max |Δp| = %.3g", d)
	if d > 1e-5 {
		t.Errorf("saved_model_cli run differs from the Go side by %g", d)
	}
}

// The export command's refusals name what is wrong.
func TestExportCLIErrors(t *testing.T) {
	binary(t)
	data := tinyDataset(t, 4, 2)
	base := t.TempDir()
	runDir, exportDir := filepath.Join(base, "run"), filepath.Join(base, "export")
	mustRun(t, "train", "vgg8", "--data", data, "--epochs", "1", "--batch-size", "4", "--out", runDir)

	// A run folder whose training has not written a checkpoint yet.
	fresh := filepath.Join(base, "fresh")
	os.MkdirAll(fresh, 0o755)
	cfg, err := os.ReadFile(filepath.Join(runDir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(fresh, "config.json"), cfg, 0o644)

	out := mustRun(t, "export", runDir, "--out", exportDir)
	if !strings.Contains(out, filepath.Join(exportDir, "1")) || !strings.Contains(out, "serving_bytes") {
		t.Errorf("export output does not name the folder and signatures:\n%s", out)
	}
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"export"}, "export needs one run folder and --out DIR"},
		{[]string{"export", runDir}, "export needs one run folder and --out DIR"},
		{[]string{"export", fresh, "--out", exportDir, "--version", "5"}, "run " + fresh + " has no checkpoint yet: train it first"},
		{[]string{"export", runDir, "--out", exportDir}, filepath.Join(exportDir, "1") + " already exists: export as another --version, or remove it first"},
		{[]string{"export", runDir, "--out", exportDir, "--version", "0"}, "--version must be a positive number"},
		{[]string{"export", runDir, "--out", exportDir, "--checkpoint", "first"}, `unknown --checkpoint "first"`},
		{[]string{"export", filepath.Join(base, "nothing"), "--out", exportDir}, "is not a run folder"},
	}
	for _, c := range cases {
		_, stderr, code := run(t, c.args...)
		if code == 0 || !strings.Contains(stderr, c.want) {
			t.Errorf("kfash-tf %s: exit %d, stderr %q; want an error containing %q", strings.Join(c.args, " "), code, stderr, c.want)
		}
	}
	if entries, _ := os.ReadDir(exportDir); len(entries) != 1 {
		t.Errorf("%s holds %d entries after the refusals, want only 1/", exportDir, len(entries))
	}
	// --version 2 --checkpoint last is another, complete version.
	mustRun(t, "export", runDir, "--out", exportDir, "--version", "2", "--checkpoint", "last")
	if _, err := os.Stat(filepath.Join(exportDir, "2", "saved_model.pb")); err != nil {
		t.Error(err)
	}
}
