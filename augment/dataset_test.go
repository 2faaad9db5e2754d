package augment

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestOpenLayouts(t *testing.T) {
	tests := []struct {
		name       string
		files      []string
		wantLayout string
		wantSplits map[string][]int // split -> counts per class (sorted classes)
		wantClass  []string
	}{
		{
			name: "split root, capitalised",
			files: []string{
				"Train/shoes/b.jpg", "Train/shoes/a.JPG", "Train/pants/x.png", "Train/t-shirt/1.jpeg",
				"Validation/shoes/v.png", "Validation/pants/v.gif", "Validation/t-shirt/v.webp",
				"Test/pants/z.bmp",
			},
			wantLayout: LayoutSplits,
			wantClass:  []string{"pants", "shoes", "t-shirt"},
			wantSplits: map[string][]int{"train": {1, 2, 1}, "validation": {1, 1, 1}, "test": {1, 0, 0}},
		},
		{
			name: "split root, lower case, no test",
			files: []string{
				"train/b/1.jpg", "train/a/1.jpg", "train/a/2.jpg",
				"validation/a/1.jpg", "validation/b/1.jpg",
			},
			wantLayout: LayoutSplits,
			wantClass:  []string{"a", "b"},
			wantSplits: map[string][]int{"train": {2, 1}, "validation": {1, 1}},
		},
		{
			name:       "split root, mixed case",
			files:      []string{"TRAIN/a/1.jpg", "train_notes.txt", "vAlIdAtIoN/a/1.jpg"},
			wantLayout: LayoutSplits,
			wantClass:  []string{"a"},
			wantSplits: map[string][]int{"train": {1}, "validation": {1}},
		},
		{
			name: "flat folder of classes",
			files: []string{
				"shoes/1.jpg", "shoes/2.jpg", "hat/1.png",
				"hat/notes.txt", "hat/.hidden.jpg", ".git/x.jpg", "hat/sub/deep.jpg",
			},
			wantLayout: LayoutFlat,
			wantClass:  []string{"hat", "shoes"},
			wantSplits: map[string][]int{"all": {1, 2}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			touch(t, root, tt.files...)
			ds, err := Open(root, OpenOptions{})
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			if ds.Layout != tt.wantLayout {
				t.Errorf("Layout = %q, want %q", ds.Layout, tt.wantLayout)
			}
			if !reflect.DeepEqual(ds.Classes, tt.wantClass) {
				t.Errorf("Classes = %v, want %v", ds.Classes, tt.wantClass)
			}
			if len(ds.Splits) != len(tt.wantSplits) {
				t.Errorf("splits = %v, want %d splits", ds.SplitNames(), len(tt.wantSplits))
			}
			for split, want := range tt.wantSplits {
				if got := ds.Counts(split); !reflect.DeepEqual(got, want) {
					t.Errorf("Counts(%s) = %v, want %v", split, got, want)
				}
			}
		})
	}
}

func TestOpenSampleOrder(t *testing.T) {
	root := t.TempDir()
	touch(t, root, "train/b/2.jpg", "train/b/1.jpg", "train/a/z.jpg", "train/a/y.png", "validation/a/1.jpg")
	ds, err := Open(root, OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := ds.Split("train")
	if err != nil {
		t.Fatal(err)
	}
	tr := filepath.Join(root, "train")
	want := []Sample{
		{filepath.Join(tr, "a", "y.png"), 0},
		{filepath.Join(tr, "a", "z.jpg"), 0},
		{filepath.Join(tr, "b", "1.jpg"), 1},
		{filepath.Join(tr, "b", "2.jpg"), 1},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("train samples =\n%v\nwant\n%v", got, want)
	}
}

func TestOpenClassSelection(t *testing.T) {
	root := t.TempDir()
	touch(t, root, "train/hat/1.jpg", "train/pants/1.jpg", "train/shoes/1.jpg", "train/shoes/2.jpg",
		"validation/hat/1.jpg", "validation/pants/1.jpg", "validation/shoes/1.jpg")
	tests := []struct {
		name    string
		classes []string
		want    []string
		counts  []int // train
		wantErr []string
	}{
		{name: "all by default", want: []string{"hat", "pants", "shoes"}, counts: []int{1, 1, 2}},
		{name: "subset in given order", classes: []string{"shoes", "hat"}, want: []string{"shoes", "hat"}, counts: []int{2, 1}},
		{name: "unknown class", classes: []string{"shoes", "dress", "coat"}, wantErr: []string{`"dress"`, `"coat"`, "found: hat, pants, shoes"}},
		{name: "duplicate class", classes: []string{"hat", "hat"}, wantErr: []string{`class "hat" is listed twice`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ds, err := Open(root, OpenOptions{Classes: tt.classes})
			if len(tt.wantErr) > 0 {
				if err == nil {
					t.Fatalf("Open succeeded, want error containing %q", tt.wantErr)
				}
				for _, w := range tt.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not contain %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(ds.Classes, tt.want) {
				t.Errorf("Classes = %v, want %v", ds.Classes, tt.want)
			}
			if got := ds.Counts("train"); !reflect.DeepEqual(got, tt.counts) {
				t.Errorf("Counts(train) = %v, want %v", got, tt.counts)
			}
			train, _ := ds.Split("train")
			for _, s := range train {
				if class := filepath.Base(filepath.Dir(s.Path)); class != ds.Classes[s.Label] {
					t.Errorf("%s has label %d (%s)", s.Path, s.Label, ds.Classes[s.Label])
				}
			}
		})
	}
}

func TestOpenErrors(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(t *testing.T, root string) string // returns the dir to open
		wantErr []string
	}{
		{
			name:    "missing folder",
			setup:   func(t *testing.T, root string) string { return filepath.Join(root, "nope") },
			wantErr: []string{"nope", "cannot open dataset", "no such file"},
		},
		{
			name: "a file, not a folder",
			setup: func(t *testing.T, root string) string {
				touch(t, root, "x.jpg")
				return filepath.Join(root, "x.jpg")
			},
			wantErr: []string{"x.jpg", "must be a folder"},
		},
		{
			name: "no class folders",
			setup: func(t *testing.T, root string) string {
				touch(t, root, "loose.jpg")
				return root
			},
			wantErr: []string{"no class folders"},
		},
		{
			name: "splits mixed with class folders",
			setup: func(t *testing.T, root string) string {
				touch(t, root, "test/a/1.jpg", "hat/1.jpg", "shoes/1.jpg")
				return root
			},
			wantErr: []string{"split folders", "hat, shoes"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := tt.setup(t, t.TempDir())
			_, err := Open(dir, OpenOptions{})
			if err == nil {
				t.Fatalf("Open(%s) succeeded", dir)
			}
			for _, w := range append(tt.wantErr, "augment: ") {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestOpenDuplicateSplitCasing(t *testing.T) {
	root := t.TempDir()
	touch(t, root, "Train/a/1.jpg")
	if err := os.Mkdir(filepath.Join(root, "train"), 0o755); err != nil {
		t.Skipf("case-insensitive file system: %v", err)
	}
	_, err := Open(root, OpenOptions{})
	if err == nil || !strings.Contains(err.Error(), "both Train and train") {
		t.Errorf("Open error = %v, want one naming both Train and train", err)
	}
}

func TestSplit(t *testing.T) {
	splitRoot := t.TempDir()
	touch(t, splitRoot, "Train/a/1.jpg", "Train/a/2.jpg", "Validation/a/1.jpg")
	flatRoot := t.TempDir()
	touch(t, flatRoot, "a/1.jpg", "b/1.jpg")
	tests := []struct {
		root    string
		split   string
		wantN   int
		wantErr string
	}{
		{splitRoot, "train", 2, ""},
		{splitRoot, "TRAIN", 2, ""},
		{splitRoot, "validation", 1, ""},
		{splitRoot, "all", 3, ""},
		{splitRoot, "test", 0, "no test split (found: train, validation)"},
		{splitRoot, "holdout", 0, `unknown split "holdout"`},
		{flatRoot, "all", 2, ""},
		{flatRoot, "train", 0, `only the split "all"`},
	}
	for _, tt := range tests {
		t.Run(filepath.Base(tt.root)+"/"+tt.split, func(t *testing.T) {
			ds, err := Open(tt.root, OpenOptions{})
			if err != nil {
				t.Fatal(err)
			}
			got, err := ds.Split(tt.split)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Split(%q) error = %v, want %q", tt.split, err, tt.wantErr)
				}
				if ds.Counts(tt.split) != nil {
					t.Errorf("Counts(%q) is not nil for a missing split", tt.split)
				}
				return
			}
			if err != nil || len(got) != tt.wantN {
				t.Fatalf("Split(%q) = %d samples, %v; want %d", tt.split, len(got), err, tt.wantN)
			}
		})
	}
}

func TestCheckTraining(t *testing.T) {
	tests := []struct {
		name    string
		files   []string
		dirs    []string
		classes []string
		wantErr []string // empty: CheckTraining must succeed
	}{
		{
			name:  "valid",
			files: []string{"Train/a/1.jpg", "Train/b/1.jpg", "Validation/a/1.jpg", "Validation/b/1.jpg"},
		},
		{
			name:    "flat folder",
			files:   []string{"a/1.jpg", "b/1.jpg"},
			wantErr: []string{"no splits", "Train", "Validation"},
		},
		{
			name:    "missing validation split",
			files:   []string{"Train/a/1.jpg", "Train/b/1.jpg", "Test/a/1.jpg"},
			wantErr: []string{"no validation split"},
		},
		{
			name:    "missing train split",
			files:   []string{"validation/a/1.jpg", "validation/b/1.jpg"},
			wantErr: []string{"no train split"},
		},
		{
			name:    "one class",
			files:   []string{"Train/a/1.jpg", "Validation/a/1.jpg"},
			wantErr: []string{"found 1 class (a); training needs at least two"},
		},
		{
			name:    "empty class folder in train",
			files:   []string{"Train/a/1.jpg", "Validation/a/1.jpg", "Validation/b/1.jpg", "Train/b/notes.txt"},
			wantErr: []string{filepath.Join("Train", "b") + `: class "b" has no images in the train split (empty folder`},
		},
		{
			name:    "empty class folder in validation",
			files:   []string{"Train/a/1.jpg", "Train/b/1.jpg", "Validation/a/1.jpg"},
			dirs:    []string{"Validation/b"},
			wantErr: []string{filepath.Join("Validation", "b") + `: class "b" has no images in the validation split`},
		},
		{
			name:    "class in train missing from validation",
			files:   []string{"Train/a/1.jpg", "Train/b/1.jpg", "Train/b/2.jpg", "Validation/a/1.jpg"},
			wantErr: []string{`class "b" has 2 train images but no images in the validation split (no folder`},
		},
		{
			name:    "selected class missing from validation",
			files:   []string{"Train/a/1.jpg", "Train/b/1.jpg", "Train/c/1.jpg", "Validation/a/1.jpg", "Validation/b/1.jpg"},
			classes: []string{"c", "a"},
			wantErr: []string{`class "c" has 1 train image but no images in the validation split`},
		},
		{
			name:    "class only in validation",
			files:   []string{"Train/a/1.jpg", "Validation/a/1.jpg", "Validation/b/1.jpg"},
			wantErr: []string{`class "b" has 1 validation image but no images in the train split`},
		},
		{
			name:  "all problems at once",
			files: []string{"Train/a/1.jpg", "Train/c/1.jpg", "Validation/a/1.jpg", "Validation/b/1.jpg"},
			dirs:  []string{"Train/b"},
			wantErr: []string{
				`class "b" has no images in the train split (empty folder`,
				`class "c" has 1 train image but no images in the validation split`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			touch(t, root, tt.files...)
			mkdirs(t, root, tt.dirs...)
			ds, err := Open(root, OpenOptions{Classes: tt.classes})
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			err = ds.CheckTraining()
			if len(tt.wantErr) == 0 {
				if err != nil {
					t.Fatalf("CheckTraining() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("CheckTraining() = nil, want errors %q", tt.wantErr)
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("CheckTraining() = %q\nwant it to contain %q", err, w)
				}
			}
			if !strings.HasPrefix(err.Error(), "augment: "+root) {
				t.Errorf("CheckTraining() = %q, want it to start with the dataset path", err)
			}
		})
	}
}

func TestClassWeights(t *testing.T) {
	labels := func(ls ...int) []Sample {
		s := make([]Sample, len(ls))
		for i, l := range ls {
			s[i].Label = l
		}
		return s
	}
	tests := []struct {
		name    string
		samples []Sample
		k       int
		want    []float32
	}{
		{"balanced", labels(0, 1, 2, 0, 1, 2), 3, []float32{1, 1, 1}},
		{"imbalanced", labels(0, 0, 0, 1), 2, []float32{4.0 / 6, 2}},
		{"missing class gets zero", labels(0, 0), 2, []float32{0.5, 0}},
		{"out of range labels ignored", labels(0, 1, 7, -1), 2, []float32{1, 1}},
		{"no classes", labels(0), 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ClassWeights(tt.samples, tt.k)
			if len(got) != len(tt.want) {
				t.Fatalf("ClassWeights = %v, want %v", got, tt.want)
			}
			for i := range got {
				if d := got[i] - tt.want[i]; d > 1e-6 || d < -1e-6 {
					t.Errorf("ClassWeights = %v, want %v", got, tt.want)
					break
				}
			}
		})
	}
}
