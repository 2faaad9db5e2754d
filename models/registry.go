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
	// CAMLayer is the layer (a name of the layer table, as `models show`
	// prints it) whose feature map Grad-CAM explains by default: the last
	// layer with a spatial map before the network pools it away. Its
	// output is taken after the ReLU or residual sum that follows it.
	CAMLayer string
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

// camLayers maps each catalogue name to its default Grad-CAM layer;
// TestCAMLayersExist builds every network and checks the name resolves.
var camLayers = map[string]string{
	"alexnet":   "conv5",              // 13×13×256, before pool5
	"vgg8":      "block4/conv2",       // 10×10×128, before the last pool
	"vgg10":     "block4/conv3",       // 10×10×512
	"googlenet": "inception5b/concat", // 7×7×1024, before the average pool
	"resnet34":  "stage4/block3/bn2",  // 8×8×512 after the residual sum and ReLU
	"densenet":  "bn",                 // 7×7×384 after the final ReLU
}

// All returns every network of the catalogue in the study's order.
func All() []Spec {
	var specs []Spec
	for _, e := range catalog.All() {
		specs = append(specs, Spec{Entry: e, Build: builders[e.Name], CAMLayer: camLayers[e.Name]})
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
	return Spec{Entry: e, Build: b, CAMLayer: camLayers[e.Name]}, nil
}
