package models

import (
	"fmt"

	tf "github.com/galeone/tensorflow/tensorflow/go"
	"github.com/galeone/tensorflow/tensorflow/go/op"

	"github.com/kfash-tf/kfash-tf/tfops"
)

// Summary is a network's layer table and totals.
type Summary struct {
	Name               string        `json:"name"`
	Title              string        `json:"title"`
	InputSize          int           `json:"input_size"`
	Classes            int           `json:"classes"`
	TrainableParams    int64         `json:"trainable_params"`
	NonTrainableParams int64         `json:"non_trainable_params"`
	ForwardFLOPs       int64         `json:"forward_flops"`
	Output             []int64       `json:"output_shape"`
	CAMLayer           string        `json:"gradcam_layer"` // Spec.CAMLayer: explain's default layer
	Layers             []tfops.Layer `json:"layers,omitempty"`
}

// Summarize builds the network in inference mode in a scratch graph (no
// session, nothing is computed) and returns its layer table and totals.
// FLOPs count 2 × the multiply-accumulates of convolutions and dense layers.
func Summarize(spec Spec, cfg Config) (*Summary, error) {
	s := op.NewScope()
	store := tfops.NewStore(s.SubScope("vars"), 0)
	size := int64(spec.InputSize)
	x := op.Placeholder(s.SubScope("images"), tf.Float, op.PlaceholderShape(tf.MakeShape(-1, size, size, 3)))
	n := tfops.NewNet(s.SubScope("infer"), store, tfops.Inference)
	logits := spec.Build(n, x, cfg)
	if err := s.Err(); err != nil {
		return nil, fmt.Errorf("building %s: %w", spec.Name, err)
	}
	sum := &Summary{Name: spec.Name, Title: spec.Title, InputSize: spec.InputSize, Classes: cfg.NumClasses, Layers: n.Layers(), CAMLayer: spec.CAMLayer}
	sum.TrainableParams, sum.NonTrainableParams = store.Counts()
	for _, l := range sum.Layers {
		sum.ForwardFLOPs += l.FLOPs
	}
	if shape, err := logits.Shape().ToSlice(); err == nil {
		sum.Output = shape[1:]
	}
	return sum, nil
}
