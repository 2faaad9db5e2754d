package models

import (
	"strings"
	"testing"

	"github.com/kfash-tf/kfash-tf/models/catalog"
)

// The built networks have the trainable-parameter counts of the study's
// table (catalog.Entry.Params), at 3 classes.
func TestTrainableParamsMatchStudy(t *testing.T) {
	for _, spec := range All() {
		t.Run(spec.Name, func(t *testing.T) {
			sum, err := Summarize(spec, spec.Config(3))
			if err != nil {
				t.Fatal(err)
			}
			if sum.TrainableParams != spec.Params {
				t.Errorf("trainable params = %d, the study has %d", sum.TrainableParams, spec.Params)
			}
			if len(sum.Output) != 1 || sum.Output[0] != 3 {
				t.Errorf("output shape %v, want [3]", sum.Output)
			}
		})
	}
}

func TestEveryEntryHasBuilder(t *testing.T) {
	for _, name := range catalog.Names() {
		if builders[name] == nil {
			t.Errorf("catalogue network %s has no builder", name)
		}
		if spec, err := Get(name); err != nil || spec.Build == nil {
			t.Errorf("Get(%s): %v", name, err)
		}
	}
	for name := range builders {
		if e, err := catalog.Get(name); err != nil || e.Name != name {
			t.Errorf("builder %s is not a catalogue network: %v", name, err)
		}
	}
	if got, want := len(All()), len(catalog.Names()); got != want {
		t.Errorf("All() has %d networks, the catalogue %d", got, want)
	}
}

func TestUnknownNetworkNamesTheKnownOnes(t *testing.T) {
	_, err := Get("nosuchnet")
	if err == nil {
		t.Fatal("no error")
	}
	for _, name := range Names() {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error %q does not name %s", err, name)
		}
	}
}
