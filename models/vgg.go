package models

import (
	"fmt"

	tf "github.com/galeone/tensorflow/tensorflow/go"

	"github.com/kfash-tf/kfash-tf/tfops"
)

// vgg8Blocks and vgg10Blocks are the study's VGG variants on 150×150 input:
// unpadded 3×3 convolutions + ReLU, a 3×3 stride-2 max pool after each
// block, then one dense layer. No batch norm, no dropout.
var (
	vgg8Blocks  = [][]int64{{16, 16}, {32, 32}, {64, 64}, {128, 128}}               // 150→…→4×4×128 = 2,048
	vgg10Blocks = [][]int64{{64, 64}, {128, 128}, {256, 256, 256}, {512, 512, 512}} // 150→…→3×3×512 = 4,608
)

// VGG8 has 299,667 parameters at 3 classes.
func VGG8(n *tfops.Net, x tf.Output, cfg Config) tf.Output { return vgg(n, x, cfg, vgg8Blocks) }

// VGG10 has 7,649,091 parameters at 3 classes (convolutions 7,635,264).
func VGG10(n *tfops.Net, x tf.Output, cfg Config) tf.Output { return vgg(n, x, cfg, vgg10Blocks) }

func vgg(n *tfops.Net, x tf.Output, cfg Config, blocks [][]int64) tf.Output {
	for i, filters := range blocks {
		x = vggBlock(n.Sub(fmt.Sprintf("block%d", i+1)), x, filters)
	}
	return n.Dense("fc", n.Flatten("flatten", x), int64(cfg.NumClasses))
}

// vggBlock is a run of unpadded 3×3 conv + ReLU layers and a 3 s2 max pool.
func vggBlock(n *tfops.Net, x tf.Output, filters []int64) tf.Output {
	for j, f := range filters {
		x = n.ReLU(n.Conv2D(fmt.Sprintf("conv%d", j+1), x, tfops.Conv{Filters: f, Kernel: 3, Bias: true}))
	}
	return n.MaxPool("pool", x, tfops.Pool{Size: 3, Stride: 2})
}
