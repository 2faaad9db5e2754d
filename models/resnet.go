package models

import (
	"fmt"

	tf "github.com/galeone/tensorflow/tensorflow/go"

	"github.com/kfash-tf/kfash-tf/tfops"
)

// resnet34Stages: basic blocks per stage and their width (He et al. 2015,
// table 1, 34-layer column).
var resnet34Stages = []struct {
	blocks int
	width  int64
}{{3, 64}, {4, 128}, {6, 256}, {3, 512}}

// ResNet34 is torchvision's resnet34 on 227×227 input with a 3-class head:
// bias-free convolutions with He-normal (fan-out) initialisation, batch norm,
// basic blocks [3, 4, 6, 3] (21,286,211 parameters at 3 classes).
func ResNet34(n *tfops.Net, x tf.Output, cfg Config) tf.Output {
	stem := n.Sub("stem")
	x = stem.Conv2D("conv", x, tfops.Conv{Filters: 64, Kernel: 7, Stride: 2, Pad: 3, Init: tfops.HeFanOut}) // 114
	x = stem.ReLU(stem.BatchNorm("bn", x))
	x = stem.MaxPool("pool", x, tfops.Pool{Size: 3, Stride: 2, Pad: 1}) // 57
	for i, st := range resnet34Stages {
		stage := n.Sub(fmt.Sprintf("stage%d", i+1))
		for j := 0; j < st.blocks; j++ {
			stride := int64(1)
			if i > 0 && j == 0 {
				stride = 2 // 29, 15, 8
			}
			x = basicBlock(stage.Sub(fmt.Sprintf("block%d", j+1)), x, st.width, stride)
		}
	}
	x = n.GlobalAvgPool("avgpool", x)
	return n.Dense("fc", x, int64(cfg.NumClasses))
}

// basicBlock is conv3×3 → BN → ReLU → conv3×3 → BN, plus the shortcut, →
// ReLU. A block that changes resolution or width projects its shortcut with
// a strided 1×1 conv + BN.
func basicBlock(n *tfops.Net, x tf.Output, width, stride int64) tf.Output {
	conv := func(name string, x tf.Output, kernel, stride int64) tf.Output {
		return n.Conv2D(name, x, tfops.Conv{Filters: width, Kernel: kernel, Stride: stride, Pad: kernel / 2, Init: tfops.HeFanOut})
	}
	shortcut := x
	if stride != 1 || n.Channels(x) != width {
		shortcut = n.BatchNorm("proj_bn", conv("proj", x, 1, stride))
	}
	y := n.ReLU(n.BatchNorm("bn1", conv("conv1", x, 3, stride)))
	y = n.BatchNorm("bn2", conv("conv2", y, 3, 1))
	return n.ReLU(n.Add("add", y, shortcut))
}
