package sweep

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/kfash-tf/kfash-tf/augment/augmenttest"
)

// The command's options override the plan's data, classes and epochs; an
// empty class list (--classes "") asks for every class folder.
func TestSweepResolveOptions(t *testing.T) {
	data := t.TempDir()
	if err := augmenttest.Write(data, augmenttest.Spec{Classes: []string{"a", "b", "c"},
		PerClass: map[string]int{"Train": 2, "Validation": 1}, Size: 8, Seed: 1}); err != nil {
		t.Fatal(err)
	}
	planFile := filepath.Join(t.TempDir(), "grid.yaml")
	plan := "data: " + filepath.Join(data, "missing") + "\nclasses: [c, a]\nruns:\n  - network: vgg8\n    epochs: 4\n"
	if err := os.WriteFile(planFile, []byte(plan), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name    string
		o       Options
		classes []string
		epochs  int
		out     string
	}{
		{"the plan's classes", Options{Plan: planFile, Data: data}, []string{"c", "a"}, 4, filepath.Join("runs", "grid")},
		{"classes given", Options{Plan: planFile, Data: data, Classes: []string{"b", "c"}, Out: "o"}, []string{"b", "c"}, 4, "o"},
		{"every class", Options{Plan: planFile, Data: data, Classes: []string{}, Epochs: 2}, []string{"a", "b", "c"}, 2, filepath.Join("runs", "grid")},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, err := resolve(c.o)
			if err != nil {
				t.Fatal(err)
			}
			if s.data != data || !reflect.DeepEqual(s.classes, c.classes) || s.out != c.out || s.source != planFile {
				t.Errorf("data %s, classes %q, out %s, source %s", s.data, s.classes, s.out, s.source)
			}
			if len(s.runs) != 1 || s.runs[0].epochs() != c.epochs {
				t.Errorf("runs %+v, want one of %d epochs", s.runs, c.epochs)
			}
		})
	}
	errs := []struct {
		o    Options
		want string
	}{
		{Options{}, "sweep needs --plan FILE"},
		{Options{Plan: planFile, Preset: "seed"}, "not both"},
		{Options{Preset: "fast"}, `unknown --preset "fast"`},
		{Options{Plan: planFile}, "missing"}, // the plan's data, which does not exist
		{Options{Preset: "seed"}, "sweep needs --data DIR"},
		{Options{Plan: planFile, Data: data, Epochs: -1}, "--epochs must be at least 1"},
	}
	for _, c := range errs {
		if _, err := resolve(c.o); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: error %v, want %q", c.o, err, c.want)
		}
	}
}
