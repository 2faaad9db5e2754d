package fmnist

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// writeSource writes the four IDX files of n training and n test images
// of 2×3 pixels, labels i % 10; the label files gzipped.
func writeSource(t *testing.T, dir string, n int) {
	t.Helper()
	labels := make([]byte, n)
	for i := range labels {
		labels[i] = byte(i % 10)
	}
	for _, prefix := range []string{"train", "t10k"} {
		writeIDXFile(t, filepath.Join(dir, prefix+"-images-idx3-ubyte"), idxBytes(ImagesMagic, []int{n, 2, 3}, make([]byte, n*6)))
		writeIDXFile(t, filepath.Join(dir, prefix+"-labels-idx1-ubyte.gz"), gzipBytes(t, idxBytes(LabelsMagic, []int{n}, labels)))
	}
}

func TestConvert(t *testing.T) {
	src := t.TempDir()
	writeSource(t, src, 40)
	out := filepath.Join(t.TempDir(), "out")
	sum, err := Convert(Options{Src: src, Out: out, Classes: []string{"Bag", " t-shirt"}, ValFraction: 0.25, Seed: 1, Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	// 4 of each class in each IDX file: of the 8 training images kept, 2 go
	// to Validation (with seed 1, one of each class).
	want := &Summary{Classes: []string{"t-shirt", "bag"}, Splits: []string{"Train", "Validation", "Test"},
		Counts: map[string][]int{"Train": {3, 3}, "Validation": {1, 1}, "Test": {4, 4}}}
	if !reflect.DeepEqual(sum, want) {
		t.Errorf("summary %+v, want %+v", sum, want)
	}
	for split, counts := range want.Counts {
		for c, class := range want.Classes {
			entries, err := os.ReadDir(filepath.Join(out, split, class))
			if err != nil || len(entries) != counts[c] {
				t.Errorf("%s/%s: %d files (%v), want %d", split, class, len(entries), err, counts[c])
			}
		}
	}
	if _, err := os.Stat(filepath.Join(out, "Test", "bag", "00008.png")); err != nil {
		t.Error(err)
	}
	if _, err := Convert(Options{Src: src, Out: out}); err == nil || !strings.Contains(err.Error(), "is not empty") {
		t.Errorf("into a full folder: %v", err)
	}
}

func TestConvertErrors(t *testing.T) {
	src := t.TempDir()
	writeSource(t, src, 10)
	partial := t.TempDir()
	writeIDXFile(t, filepath.Join(partial, "train-images-idx3-ubyte"), nil)
	missing := filepath.Join(t.TempDir(), "none")
	for _, tc := range []struct {
		name   string
		o      Options
		source *SourceError
		want   string
	}{
		{"no source", Options{Src: missing}, &SourceError{Dir: missing}, "no Fashion-MNIST folder"},
		{"no labels", Options{Src: partial}, &SourceError{Dir: partial, File: "train-labels-idx1-ubyte"}, "no train-labels-idx1-ubyte or train-labels-idx1-ubyte.gz"},
		{"unknown class", Options{Src: src, Classes: []string{"hat"}}, nil, `unknown class "hat"`},
		{"class twice", Options{Src: src, Classes: []string{"bag", "BAG"}}, nil, "name bag twice"},
		{"validation fraction", Options{Src: src, ValFraction: 1}, nil, "validation fraction 1 must be in [0, 1)"},
		{"train limit", Options{Src: src, TrainLimit: -1}, nil, "train limit -1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.o.Out = filepath.Join(t.TempDir(), "out")
			_, err := Convert(tc.o)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
			var se *SourceError
			if errors.As(err, &se) != (tc.source != nil) || (tc.source != nil && *se != *tc.source) {
				t.Errorf("source error %+v, want %+v", se, tc.source)
			}
			if _, err := os.Stat(tc.o.Out); err == nil {
				t.Errorf("%s was created by a failed conversion", tc.o.Out)
			}
		})
	}
}
