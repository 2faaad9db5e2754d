package models

import (
	tf "github.com/galeone/tensorflow/tensorflow/go"

	"github.com/kfash-tf/kfash-tf/tfops"
)

// AlexNet is the study's single-tower AlexNet on 227×227 input: five
// convolutions, batch norm in place of LRN after the first two pools, and
// three dense layers with dropout (58,294,339 parameters at 3 classes).
//
//	layer   out          params
//	conv1   55×55×96     34,944    11×11 s4
//	pool1   27×27×96               3 s2
//	bn1                  192
//	conv2   27×27×256    614,656   5×5 p2
//	pool2   13×13×256              3 s2
//	bn2                  512
//	conv3   13×13×384    885,120   3×3 p1
//	conv4   13×13×384    1,327,488 3×3 p1
//	conv5   13×13×256    884,992   3×3 p1
//	pool5   6×6×256                3 s2 → 9,216
//	fc6     4096         37,752,832 (dropout before)
//	fc7     4096         16,781,312 (dropout before)
//	fc8     classes      12,291
func AlexNet(n *tfops.Net, x tf.Output, cfg Config) tf.Output {
	pool := tfops.Pool{Size: 3, Stride: 2}
	x = n.ReLU(n.Conv2D("conv1", x, tfops.Conv{Filters: 96, Kernel: 11, Stride: 4, Bias: true}))
	x = n.BatchNorm("bn1", n.MaxPool("pool1", x, pool))
	x = n.ReLU(n.Conv2D("conv2", x, tfops.Conv{Filters: 256, Kernel: 5, Pad: 2, Bias: true}))
	x = n.BatchNorm("bn2", n.MaxPool("pool2", x, pool))
	x = n.ReLU(n.Conv2D("conv3", x, tfops.Conv{Filters: 384, Kernel: 3, Pad: 1, Bias: true}))
	x = n.ReLU(n.Conv2D("conv4", x, tfops.Conv{Filters: 384, Kernel: 3, Pad: 1, Bias: true}))
	x = n.ReLU(n.Conv2D("conv5", x, tfops.Conv{Filters: 256, Kernel: 3, Pad: 1, Bias: true}))
	x = n.Flatten("flatten", n.MaxPool("pool5", x, pool))
	x = n.ReLU(n.Dense("fc6", n.Dropout("drop6", x, cfg.Dropout), 4096))
	x = n.ReLU(n.Dense("fc7", n.Dropout("drop7", x, cfg.Dropout), 4096))
	return n.Dense("fc8", x, int64(cfg.NumClasses))
}
