// Package catalog is the seed study's table of networks as plain data: name,
// title, input size, trainable parameters and the training recipe the study
// rated best (spec: "Networks" and "Training recipes of the study").
//
// It is pure Go, without the builders (package models, which needs cgo), so
// that code which only needs names and recipes, such as sweep-plan parsing,
// builds with CGO_ENABLED=0.
//
// The table, in the study's order (params: trainable, at 3 classes; all
// recipes 100 epochs):
//
//	name       input  params      batch  optimizer  lr    weight decay  dropout
//	alexnet    227    58,294,339  128    adam       1e-4  1e-3          0.8
//	vgg8       150    299,667     128    adamw      1e-4  0             -
//	vgg10      150    7,649,091   128    adamw      1e-4  0             -
//	googlenet  224    5,972,467   64     adamw      5e-5  5e-3          0.4
//	resnet34   227    21,286,211  128    adam       1e-4  1e-4          -
//	densenet   227    1,000,827   64     adam       1e-4  1e-4          -
//
// TestDocTableMatchesEntries keeps this table and the entries below equal.
package catalog

import (
	"fmt"
	"sort"
	"strings"
)

// Recipe is the study's training setup for a network; for networks with
// several runs, the one the study rated best.
type Recipe struct {
	BatchSize   int
	Optimizer   string // "adam" (L2 coupled) or "adamw" (decoupled)
	LR          float64
	WeightDecay float64
	Dropout     float32 // 0 for networks without dropout
	Epochs      int
}

// Entry is one network of the study.
type Entry struct {
	Name      string
	Title     string
	InputSize int // height = width of the input image
	// Params is the study's count of trainable parameters at 3 classes
	// (BatchNorm γ and β count, its moving statistics do not); the models
	// tests check the built networks against it.
	Params  int64
	HasDrop bool // whether the network has dropout, so Recipe.Dropout applies
	Recipe  Recipe
}

// entries is the study's table, in the study's order.
var entries = []Entry{
	{Name: "alexnet", Title: "AlexNet (single tower, BN instead of LRN)", InputSize: 227, Params: 58_294_339, HasDrop: true,
		Recipe: Recipe{BatchSize: 128, Optimizer: "adam", LR: 1e-4, WeightDecay: 1e-3, Dropout: 0.8, Epochs: 100}},
	{Name: "vgg8", Title: "VGG-8 (unpadded 3×3 convs, 16–128 wide)", InputSize: 150, Params: 299_667,
		Recipe: Recipe{BatchSize: 128, Optimizer: "adamw", LR: 1e-4, WeightDecay: 0, Epochs: 100}},
	{Name: "vgg10", Title: "VGG-10 (unpadded 3×3 convs, 64–512 wide)", InputSize: 150, Params: 7_649_091,
		Recipe: Recipe{BatchSize: 128, Optimizer: "adamw", LR: 1e-4, WeightDecay: 0, Epochs: 100}},
	{Name: "googlenet", Title: "GoogLeNet (Inception v1, no BN, no aux heads)", InputSize: 224, Params: 5_972_467, HasDrop: true,
		Recipe: Recipe{BatchSize: 64, Optimizer: "adamw", LR: 5e-5, WeightDecay: 5e-3, Dropout: 0.4, Epochs: 100}},
	{Name: "resnet34", Title: "ResNet-34", InputSize: 227, Params: 21_286_211,
		Recipe: Recipe{BatchSize: 128, Optimizer: "adam", LR: 1e-4, WeightDecay: 1e-4, Epochs: 100}},
	{Name: "densenet", Title: "DenseNet-BC [6,12,24,16], k=12", InputSize: 227, Params: 1_000_827,
		Recipe: Recipe{BatchSize: 64, Optimizer: "adam", LR: 1e-4, WeightDecay: 1e-4, Epochs: 100}},
}

// All returns every network in the study's order. The slice is a copy, so
// callers cannot change the table.
func All() []Entry { return append([]Entry(nil), entries...) }

// Names returns the network names in the study's order.
func Names() []string {
	names := make([]string, len(entries))
	for i, e := range entries {
		names[i] = e.Name
	}
	return names
}

// Get returns the network called name (case-insensitive); the error names
// the known networks.
func Get(name string) (Entry, error) {
	for _, e := range entries {
		if strings.EqualFold(e.Name, name) {
			return e, nil
		}
	}
	known := Names()
	sort.Strings(known)
	return Entry{}, fmt.Errorf("unknown network %q: known networks are %s", name, strings.Join(known, ", "))
}
