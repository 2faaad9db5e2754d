package models

import "testing"

// Every network's default Grad-CAM layer is a row of its layer table with a
// spatial (H×W×C) output wider than 1×1: explain finds the feature map by
// that name, and a map that is already pooled away explains nothing.
func TestCAMLayersExist(t *testing.T) {
	for _, spec := range All() {
		t.Run(spec.Name, func(t *testing.T) {
			if spec.CAMLayer == "" {
				t.Fatal("no Grad-CAM layer")
			}
			sum, err := Summarize(spec, spec.Config(3))
			if err != nil {
				t.Fatal(err)
			}
			if sum.CAMLayer != spec.CAMLayer {
				t.Errorf("summary names %q, spec %q", sum.CAMLayer, spec.CAMLayer)
			}
			for _, l := range sum.Layers {
				if l.Name == spec.CAMLayer {
					if len(l.Shape) != 3 || l.Shape[0] < 2 || l.Shape[1] < 2 {
						t.Errorf("layer %s has output %v, want a spatial map", l.Name, l.Shape)
					}
					return
				}
			}
			t.Errorf("layer %q is not in the layer table", spec.CAMLayer)
		})
	}
}
