// Package models defines the study's networks, one file each, and a
// registry from name to builder, input size and the study's recipe.
package models

import (
	"fmt"
	"sort"
	"strings"

	tf "github.com/galeone/tensorflow/tensorflow/go"

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

// Recipe is the study's training setup for a network (spec: "Training
// recipes of the study"); for networks with several runs, the one the study
// rated best.
type Recipe struct {
	BatchSize   int
	Optimizer   string // "adam" (L2 coupled) or "adamw" (decoupled)
	LR          float64
	WeightDecay float64
	Dropout     float32
	Epochs      int
}

// Spec describes one registered network.
type Spec struct {
	Name      string
	Title     string
	InputSize int // height = width of the input image
	Build     Builder
	Recipe    Recipe
	HasDrop   bool // whether Config.Dropout is used
}

// Config returns the network's configuration for classes output classes
// with the study's dropout rate.
func (s Spec) Config(classes int) Config {
	return Config{NumClasses: classes, Dropout: s.Recipe.Dropout}
}

// specs lists the networks of the seed study in the study's order.
func specs() []Spec {
	return []Spec{
		{Name: "alexnet", Title: "AlexNet (single tower, BN instead of LRN)", InputSize: 227, Build: AlexNet, HasDrop: true,
			Recipe: Recipe{BatchSize: 128, Optimizer: "adam", LR: 1e-4, WeightDecay: 1e-3, Dropout: 0.8, Epochs: 100}},
		{Name: "vgg8", Title: "VGG-8 (unpadded 3×3 convs, 16–128 wide)", InputSize: 150, Build: VGG8,
			Recipe: Recipe{BatchSize: 128, Optimizer: "adamw", LR: 1e-4, WeightDecay: 0, Epochs: 100}},
		{Name: "vgg10", Title: "VGG-10 (unpadded 3×3 convs, 64–512 wide)", InputSize: 150, Build: VGG10,
			Recipe: Recipe{BatchSize: 128, Optimizer: "adamw", LR: 1e-4, WeightDecay: 0, Epochs: 100}},
		{Name: "googlenet", Title: "GoogLeNet (Inception v1, no BN, no aux heads)", InputSize: 224, Build: GoogLeNet, HasDrop: true,
			Recipe: Recipe{BatchSize: 64, Optimizer: "adamw", LR: 5e-5, WeightDecay: 5e-3, Dropout: 0.4, Epochs: 100}},
		{Name: "resnet34", Title: "ResNet-34", InputSize: 227, Build: ResNet34,
			Recipe: Recipe{BatchSize: 128, Optimizer: "adam", LR: 1e-4, WeightDecay: 1e-4, Epochs: 100}},
		{Name: "densenet", Title: "DenseNet-BC [6,12,24,16], k=12", InputSize: 227, Build: DenseNet,
			Recipe: Recipe{BatchSize: 64, Optimizer: "adam", LR: 1e-4, WeightDecay: 1e-4, Epochs: 100}},
	}
}

// All returns every registered network in the study's order.
func All() []Spec { return specs() }

// Names returns the registered network names in the study's order.
func Names() []string {
	var names []string
	for _, s := range specs() {
		names = append(names, s.Name)
	}
	return names
}

// Get returns the network called name (case-insensitive); the error names
// the known networks.
func Get(name string) (Spec, error) {
	for _, s := range specs() {
		if strings.EqualFold(s.Name, name) {
			return s, nil
		}
	}
	known := Names()
	sort.Strings(known)
	return Spec{}, fmt.Errorf("unknown network %q: known networks are %s", name, strings.Join(known, ", "))
}
