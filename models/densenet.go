package models

import (
	"fmt"

	tf "github.com/galeone/tensorflow/tensorflow/go"

	"github.com/kfash-tf/kfash-tf/tfops"
)

// DenseNet-BC as the study configured it (Huang et al. 2017): growth rate
// 12, bottleneck width 4·12, compression 0.5.
const (
	denseGrowth     = 12
	denseBottleneck = 4 * denseGrowth
)

// denseNetBlocks are the dense layers per block.
var denseNetBlocks = []int{6, 12, 24, 16}

// DenseNet is the study's DenseNet-BC on 227×227 input: a biased 7×7 stem
// without BN, four dense blocks joined by transitions, BN → ReLU → global
// average pool → dense (1,000,827 parameters at 3 classes). Channels:
// 24 → 96 → 48 → 192 → 96 → 384 → 192 → 384.
func DenseNet(n *tfops.Net, x tf.Output, cfg Config) tf.Output {
	stem := n.Sub("stem")
	x = stem.Conv2D("conv", x, tfops.Conv{Filters: 2 * denseGrowth, Kernel: 7, Stride: 2, Pad: 3, Bias: true}) // 114
	x = stem.MaxPool("pool", x, tfops.Pool{Size: 3, Stride: 2, Pad: 1})                                        // 57
	for i, layers := range denseNetBlocks {
		block := n.Sub(fmt.Sprintf("block%d", i+1))
		for j := 0; j < layers; j++ {
			x = denseLayer(block.Sub(fmt.Sprintf("layer%d", j+1)), x)
		}
		if i < len(denseNetBlocks)-1 {
			x = transition(n.Sub(fmt.Sprintf("transition%d", i+1)), x) // 28, 14, 7
		}
	}
	x = n.ReLU(n.BatchNorm("bn", x))
	x = n.GlobalAvgPool("avgpool", x)
	return n.Dense("fc", x, int64(cfg.NumClasses))
}

// denseLayer is BN → ReLU → 1×1 conv (bottleneck) → BN → ReLU → 3×3 conv
// (growth), its output concatenated to its input: 50·c + 5,280 parameters.
func denseLayer(n *tfops.Net, x tf.Output) tf.Output {
	y := n.Conv2D("conv1", n.ReLU(n.BatchNorm("bn1", x)), tfops.Conv{Filters: denseBottleneck, Kernel: 1})
	y = n.Conv2D("conv2", n.ReLU(n.BatchNorm("bn2", y)), tfops.Conv{Filters: denseGrowth, Kernel: 3, Pad: 1})
	return n.Concat("concat", x, y)
}

// transition halves the channels (compression 0.5) with BN → ReLU → 1×1
// conv and the resolution with a 2×2 average pool.
func transition(n *tfops.Net, x tf.Output) tf.Output {
	y := n.Conv2D("conv", n.ReLU(n.BatchNorm("bn", x)), tfops.Conv{Filters: n.Channels(x) / 2, Kernel: 1})
	return n.AvgPool("pool", y, tfops.Pool{Size: 2, Stride: 2})
}
