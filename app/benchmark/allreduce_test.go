package benchmark

import (
	"testing"

	"github.com/kfash-tf/kfash-tf/models"
)

// The all-reduce moves every trainable parameter's gradient: the sizes add
// up to the network's trainable count at the study's 3 classes.
func TestGradientSizesAddUpToTrainableParams(t *testing.T) {
	for _, spec := range models.All() {
		sizes, err := GradientSizes(spec)
		if err != nil {
			t.Fatal(err)
		}
		sum, err := models.Summarize(spec, spec.Config(len(classes)))
		if err != nil {
			t.Fatal(err)
		}
		var total int64
		for _, s := range sizes {
			total += s
		}
		if total != sum.TrainableParams || len(sizes) < 2 {
			t.Errorf("%s: %d tensors of %d elements, want %d", spec.Name, len(sizes), total, sum.TrainableParams)
		}
	}
}
