package app

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"encoding/json"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kfash-tf/kfash-tf/augment"
	"github.com/kfash-tf/kfash-tf/augment/fmnist"
)

func idxFile(t *testing.T, path string, magic uint32, dims []int, data []byte, gz bool) {
	t.Helper()
	var b bytes.Buffer
	binary.Write(&b, binary.BigEndian, magic)
	for _, d := range dims {
		binary.Write(&b, binary.BigEndian, uint32(d))
	}
	b.Write(data)
	raw := b.Bytes()
	if gz {
		var z bytes.Buffer
		zw := gzip.NewWriter(&z)
		zw.Write(raw)
		zw.Close()
		raw, path = z.Bytes(), path+".gz"
	}
	if err := os.WriteFile(path, raw, 0o644); err != nil {
		t.Fatal(err)
	}
}

// tinyFashionMNIST writes nTrain training and nTest test images of 28×28
// whose label is index % 10 and whose pixels all equal the index (plus 128
// for test images, so that no two images are equal); training files
// gzipped, test files not.
func tinyFashionMNIST(t *testing.T, nTrain, nTest int) string {
	dir := t.TempDir()
	for _, f := range []struct {
		prefix string
		n      int
		gz     bool
		base   int
	}{{"train", nTrain, true, 0}, {"t10k", nTest, false, 128}} {
		pix := make([]byte, f.n*28*28)
		labels := make([]byte, f.n)
		for i := 0; i < f.n; i++ {
			labels[i] = byte(i % 10)
			for j := 0; j < 28*28; j++ {
				pix[i*28*28+j] = byte(f.base + i)
			}
		}
		idxFile(t, filepath.Join(dir, f.prefix+"-images-idx3-ubyte"), fmnist.ImagesMagic, []int{f.n, 28, 28}, pix, f.gz)
		idxFile(t, filepath.Join(dir, f.prefix+"-labels-idx1-ubyte"), fmnist.LabelsMagic, []int{f.n}, labels, f.gz)
	}
	return dir
}

func runApp(t *testing.T, args ...string) (string, error) {
	t.Helper()
	a := New("test")
	var buf bytes.Buffer
	a.Writer = &buf
	err := a.Run(flagsFirst(a, append([]string{"kfash-tf"}, args...)))
	return buf.String(), err
}

func countPNGs(t *testing.T, dir string) int {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*.png"))
	if err != nil {
		t.Fatal(err)
	}
	return len(m)
}

func TestDataFashionMNIST(t *testing.T) {
	src := tinyFashionMNIST(t, 100, 20)
	outDir := filepath.Join(t.TempDir(), "fm")
	text, err := runApp(t, "data", "fashion-mnist", "--src", src, "--out", outDir,
		"--classes", "sandal,t-shirt", "--val-fraction", "0.25", "--seed", "3")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text, "t-shirt") || !strings.Contains(text, "sandal") || strings.Contains(text, "trouser") {
		t.Errorf("summary:\n%s", text)
	}
	// 20 selected training images (10 t-shirt, 10 sandal): 5 to Validation.
	tr := countPNGs(t, filepath.Join(outDir, "Train", "t-shirt")) + countPNGs(t, filepath.Join(outDir, "Train", "sandal"))
	va := countPNGs(t, filepath.Join(outDir, "Validation", "t-shirt")) + countPNGs(t, filepath.Join(outDir, "Validation", "sandal"))
	if tr != 15 || va != 5 {
		t.Errorf("train %d, validation %d, want 15 and 5", tr, va)
	}
	if n := countPNGs(t, filepath.Join(outDir, "Test", "sandal")); n != 2 {
		t.Errorf("test sandals = %d, want 2", n)
	}
	if _, err := os.Stat(filepath.Join(outDir, "Train", "trouser")); err == nil {
		t.Error("unselected class written")
	}
	entries, _ := os.ReadDir(outDir)
	if len(entries) != 3 {
		t.Errorf("out has %d entries, want Train, Validation, Test only", len(entries))
	}
	// Test image 15 is a sandal (label 5) with every pixel 128+15.
	f, err := os.Open(filepath.Join(outDir, "Test", "sandal", "00015.png"))
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	if b := img.Bounds(); b.Dx() != 28 || b.Dy() != 28 {
		t.Errorf("size %v", b)
	}
	if r, _, _, _ := img.At(3, 4).RGBA(); r>>8 != 143 {
		t.Errorf("pixel = %d, want 143", r>>8)
	}

	// The same seed gives the same split; a non-empty --out is refused.
	out2 := filepath.Join(t.TempDir(), "fm2")
	if _, err := runApp(t, "data", "fashion-mnist", "--src", src, "--out", out2,
		"--classes", "sandal,t-shirt", "--val-fraction", "0.25", "--seed", "3"); err != nil {
		t.Fatal(err)
	}
	a, _ := filepath.Glob(filepath.Join(outDir, "Validation", "*", "*.png"))
	b, _ := filepath.Glob(filepath.Join(out2, "Validation", "*", "*.png"))
	for i := range a {
		if i >= len(b) || filepath.Base(a[i]) != filepath.Base(b[i]) {
			t.Fatalf("validation differs with one seed: %v vs %v", a, b)
		}
	}
	if _, err := runApp(t, "data", "fashion-mnist", "--src", src, "--out", outDir); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Errorf("non-empty out: err = %v", err)
	}
}

func TestDataFashionMNISTLimitAndStaleTmp(t *testing.T) {
	src := tinyFashionMNIST(t, 50, 10)
	outDir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(outDir, ".tmp-fashion-mnist-old", "Train"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := runApp(t, "data", "fashion-mnist", "--src", src, "--out", outDir, "--train-limit", "20", "--val-fraction", "0.1"); err != nil {
		t.Fatal(err)
	}
	tr, _ := filepath.Glob(filepath.Join(outDir, "Train", "*", "*.png"))
	va, _ := filepath.Glob(filepath.Join(outDir, "Validation", "*", "*.png"))
	te, _ := filepath.Glob(filepath.Join(outDir, "Test", "*", "*.png"))
	if len(tr) != 18 || len(va) != 2 || len(te) != 10 {
		t.Errorf("train %d validation %d test %d, want 18, 2, 10", len(tr), len(va), len(te))
	}
	if _, err := os.Stat(filepath.Join(outDir, ".tmp-fashion-mnist-old")); err == nil {
		t.Error("stale temporary folder left")
	}
}

func TestDataFashionMNISTErrors(t *testing.T) {
	src := tinyFashionMNIST(t, 10, 10)
	hint := "install it with `apt-get install dataset-fashion-mnist`, or download the four upstream .gz files and pass --src"
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"--src", filepath.Join(t.TempDir(), "none")}, hint},
		{[]string{"--src", t.TempDir()}, hint},
		{[]string{"--src", src, "--classes", "hat"}, "unknown class"},
		{[]string{"--src", src, "--classes", "bag,bag"}, "twice"},
		{[]string{"--src", src, "--val-fraction", "1"}, "--val-fraction"},
	}
	for _, c := range cases {
		args := append([]string{"data", "fashion-mnist", "--out", filepath.Join(t.TempDir(), "o")}, c.args...)
		if _, err := runApp(t, args...); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: err = %v, want %q", c.args, err, c.want)
		}
	}
	// Mismatched counts name both files.
	idxFile(t, filepath.Join(src, "t10k-labels-idx1-ubyte"), fmnist.LabelsMagic, []int{3}, []byte{1, 2, 3}, false)
	_, err := runApp(t, "data", "fashion-mnist", "--src", src, "--out", filepath.Join(t.TempDir(), "o"))
	if err == nil || !strings.Contains(err.Error(), "t10k-labels-idx1-ubyte") || !strings.Contains(err.Error(), "3 labels") {
		t.Errorf("count mismatch: err = %v", err)
	}
}

func TestDataStats(t *testing.T) {
	src := tinyFashionMNIST(t, 30, 10)
	outDir := filepath.Join(t.TempDir(), "fm")
	if _, err := runApp(t, "data", "fashion-mnist", "--src", src, "--out", outDir, "--classes", "bag,coat"); err != nil {
		t.Fatal(err)
	}
	// Leak one test image into Train and add a corrupt file.
	data, err := os.ReadFile(filepath.Join(outDir, "Test", "bag", "00008.png"))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(outDir, "Train", "bag", "leak.png"), data, 0o644)
	os.WriteFile(filepath.Join(outDir, "Train", "coat", "bad.png"), []byte("junk"), 0o644)

	text, err := runApp(t, "data", "stats", outDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"leakage): 1 pairs", "leak.png", "unreadable files: 1", "bad.png", "<64"} {
		if !strings.Contains(text, want) {
			t.Errorf("text output lacks %q:\n%s", want, text)
		}
	}
	js, err := runApp(t, "data", "stats", outDir, "--format", "json")
	if err != nil {
		t.Fatal(err)
	}
	var st augment.DatasetStats
	if err := json.Unmarshal([]byte(js), &st); err != nil {
		t.Fatal(err)
	}
	if len(st.CrossSplit) != 1 || len(st.Unreadable) != 1 || len(st.Splits) != 3 {
		t.Errorf("json stats = %+v", st)
	}
	if _, err := runApp(t, "data", "stats"); err == nil {
		t.Error("stats without DIR succeeded")
	}
}
