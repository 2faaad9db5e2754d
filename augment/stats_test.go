package augment

import (
	"bytes"
	"image"
	"image/png"
	"path/filepath"
	"testing"
)

func pngOf(t *testing.T, w, h int, v byte) []byte {
	t.Helper()
	img := image.NewGray(image.Rect(0, 0, w, h))
	for i := range img.Pix {
		img.Pix[i] = v
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestStats(t *testing.T) {
	root := t.TempDir()
	put := func(rel string, data []byte) string {
		p := filepath.Join(root, rel)
		writeFile(t, p, data)
		return p
	}
	leak := pngOf(t, 10, 20, 7)
	trainLeak := put("Train/cat/a.png", leak)
	put("Train/cat/b.png", pngOf(t, 100, 64, 1))
	dupA := put("Train/dog/c.png", pngOf(t, 300, 2, 2))
	dupB := put("Train/dog/d.png", pngOf(t, 300, 2, 2))
	valLeak := put("Validation/cat/e.png", leak)
	put("Validation/dog/f.png", pngOf(t, 2000, 5, 3))
	corrupt := put("Validation/dog/g.png", []byte("not an image at all"))
	testLeak := put("Test/dog/h.png", leak)

	ds, err := Open(root, OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	st, err := Stats(ds, StatsOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Splits) != 3 || st.Splits[0].Name != SplitTrain || st.Splits[0].Total != 4 ||
		st.Splits[1].Total != 3 || st.Splits[2].Total != 1 {
		t.Fatalf("splits = %+v", st.Splits)
	}
	if c := st.Splits[1].Counts; c[0] != 1 || c[1] != 2 {
		t.Errorf("validation counts = %v, want [1 2]", c)
	}
	// <64: the leak image (20 px) three times; 64–127: 100; 256–511: 300 twice; ≥1024: 2000.
	wantSizes := []int{3, 1, 0, 2, 0, 1}
	for i, b := range st.Sizes {
		if b.Count != wantSizes[i] {
			t.Errorf("size bucket %s = %d, want %d", b.Label, b.Count, wantSizes[i])
		}
	}
	if len(st.CrossSplit) != 3 {
		t.Fatalf("cross-split pairs = %+v, want 3 (train-validation, train-test, validation-test)", st.CrossSplit)
	}
	pairs := map[[2]string]bool{}
	for _, p := range st.CrossSplit {
		pairs[[2]string{p.PathA, p.PathB}] = true
		if p.SplitA == p.SplitB {
			t.Errorf("pair in one split: %+v", p)
		}
	}
	for _, want := range [][2]string{{trainLeak, valLeak}, {trainLeak, testLeak}, {valLeak, testLeak}} {
		if !pairs[want] {
			t.Errorf("missing leakage pair %v in %+v", want, st.CrossSplit)
		}
	}
	if len(st.WithinSplit) != 1 || st.WithinSplit[0].Split != SplitTrain ||
		len(st.WithinSplit[0].Paths) != 2 || st.WithinSplit[0].Paths[0] != dupA || st.WithinSplit[0].Paths[1] != dupB {
		t.Errorf("within-split duplicates = %+v", st.WithinSplit)
	}
	if len(st.Unreadable) != 1 || st.Unreadable[0].Path != corrupt || st.Unreadable[0].Reason == "" {
		t.Errorf("unreadable = %+v", st.Unreadable)
	}
}

func TestStatsFlat(t *testing.T) {
	root := t.TempDir()
	writeFile(t, filepath.Join(root, "a", "x.png"), pngOf(t, 64, 64, 0))
	ds, err := Open(root, OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	st, err := Stats(ds, StatsOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Splits) != 1 || st.Splits[0].Name != SplitAll || st.Splits[0].Total != 1 || st.Sizes[1].Count != 1 {
		t.Errorf("stats = %+v", st)
	}
	if len(st.CrossSplit)+len(st.WithinSplit)+len(st.Unreadable) != 0 {
		t.Errorf("unexpected findings: %+v", st)
	}
}
