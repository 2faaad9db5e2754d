package augment

import (
	"fmt"
	"strings"
)

// Normalize names a pixel normalisation. The loader always produces 0–255
// values; the TF graph applies (x - mean) / std with the constants of
// MeanStd, so that training, evaluation, prediction and the exported model
// share one definition. Apply is the same arithmetic in Go, for tests and
// for checking the graph.
type Normalize string

// Normalisations.
const (
	// NormalizeNone keeps 0–255 (mean 0, std 1).
	NormalizeNone Normalize = "none"
	// NormalizeUnit maps to 0–1 (mean 0, std 255), the seed study's 1/255
	// rescale.
	NormalizeUnit Normalize = "unit"
	// NormalizeImageNet subtracts the ImageNet channel means and divides by
	// the ImageNet channel standard deviations (both given for 0–1 inputs,
	// here scaled by 255).
	NormalizeImageNet Normalize = "imagenet"
)

// ParseNormalize parses "none", "unit" or "imagenet" (any letter case).
func ParseNormalize(s string) (Normalize, error) {
	n := Normalize(strings.ToLower(strings.TrimSpace(s)))
	if err := n.Validate(); err != nil {
		return "", err
	}
	return n, nil
}

// Validate returns an error unless n is one of the Normalize constants.
func (n Normalize) Validate() error {
	switch n {
	case NormalizeNone, NormalizeUnit, NormalizeImageNet:
		return nil
	}
	return fmt.Errorf("augment: unknown normalization %q (want none, unit or imagenet)", string(n))
}

// MeanStd returns the per-channel (R, G, B) mean and standard deviation such
// that normalized = (x - mean) / std for x in 0–255. An invalid value (see
// Validate) returns the identity, like NormalizeNone.
func (n Normalize) MeanStd() (mean, std [3]float32) {
	switch n {
	case NormalizeUnit:
		return [3]float32{0, 0, 0}, [3]float32{255, 255, 255}
	case NormalizeImageNet:
		// 255 × (0.485, 0.456, 0.406) and 255 × (0.229, 0.224, 0.225),
		// written out so the constants are exact in the source.
		return [3]float32{123.675, 116.28, 103.53}, [3]float32{58.395, 57.12, 57.375}
	}
	return [3]float32{0, 0, 0}, [3]float32{1, 1, 1}
}

// Apply normalises buf in place, where buf holds HWC RGB values (channel =
// index mod 3) in 0–255, as the loader produces them.
func (n Normalize) Apply(buf []float32) {
	mean, std := n.MeanStd()
	for i := range buf {
		c := i % 3
		buf[i] = (buf[i] - mean[c]) / std[c]
	}
}
