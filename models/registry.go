// Package models builds the study's networks, one file each, on tfops. The
// study's data about them (names, input sizes, recipes) is in
// models/catalog, which needs no cgo; this package attaches a builder to
// each catalogue entry.
package models

import (
	"fmt"

	tf "github.com/galeone/tensorflow/tensorflow/go"

	"github.com/kfash-tf/kfash-tf/models/catalog"
	"github.com/kfash-tf/kfash-tf/tfops"
)

// Config holds the parameters of a network that are not fixed by its
// architecture.
type Config struct {
	NumClasses int     // size of the output layer (the study: 3)
	Dropout    float32 // dropout rate where the network has dropout
}

// Builder adds a network to n on the NHWC float32 input x (already
// normalised) and returns the logits [N, NumClasses].
type Builder func(n *tfops.Net, x tf.Output, cfg Config) tf.Output

// Spec is a catalogue entry with its builder.
type Spec struct {
	catalog.Entry
	Build Builder
}

// Config returns the network's configuration for classes output classes
// with the study's dropout rate.
func (s Spec) Config(classes int) Config {
	return Config{NumClasses: classes, Dropout: s.Recipe.Dropout}
}

// builders maps each catalogue name to its builder; TestEveryEntryHasBuilder
// keeps the two in step.
var builders = map[string]Builder{
	"alexnet":   AlexNet,
	"vgg8":      VGG8,
	"vgg10":     VGG10,
	"googlenet": GoogLeNet,
	"resnet34":  ResNet34,
	"densenet":  DenseNet,
}

// All returns every network of the catalogue in the study's order.
func All() []Spec {
	var specs []Spec
	for _, e := range catalog.All() {
		specs = append(specs, Spec{Entry: e, Build: builders[e.Name]})
	}
	return specs
}

// Names returns the network names in the study's order, as catalog.Names
// does; it saves callers that build networks a second import.
func Names() []string { return catalog.Names() }

// Get returns the network called name (case-insensitive); the error names
// the known networks.
func Get(name string) (Spec, error) {
	e, err := catalog.Get(name)
	if err != nil {
		return Spec{}, err
	}
	b, ok := builders[e.Name]
	if !ok {
		return Spec{}, fmt.Errorf("network %s has no builder", e.Name)
	}
	return Spec{Entry: e, Build: b}, nil
}
