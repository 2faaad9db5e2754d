package models

import (
	"strings"
	"testing"
)

// The trainable-parameter counts of the study's table
// (../shared/spec/seed-study.md), at 3 classes.
var studyParams = map[string]int64{
	"alexnet":   58_294_339,
	"vgg8":      299_667,
	"vgg10":     7_649_091,
	"googlenet": 5_972_467,
	"resnet34":  21_286_211,
	"densenet":  1_000_827,
}

func TestTrainableParamsMatchStudy(t *testing.T) {
	for _, spec := range All() {
		t.Run(spec.Name, func(t *testing.T) {
			sum, err := Summarize(spec, spec.Config(3))
			if err != nil {
				t.Fatal(err)
			}
			if want := studyParams[spec.Name]; sum.TrainableParams != want {
				t.Errorf("trainable params = %d, the study has %d", sum.TrainableParams, want)
			}
			if len(sum.Output) != 1 || sum.Output[0] != 3 {
				t.Errorf("output shape %v, want [3]", sum.Output)
			}
		})
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
