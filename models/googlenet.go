package models

import (
	tf "github.com/galeone/tensorflow/tensorflow/go"

	"github.com/kfash-tf/kfash-tf/tfops"
)

// inception is one row of GoogLeNet's table: the widths of the four branches.
type inception struct {
	name                                     string
	c1x1, c3x3red, c3x3, c5x5red, c5x5, proj int64
}

// googLeNetStages are the inception modules of Szegedy et al. (2014), table 1;
// a 3 s2 p1 max pool separates the stages.
var googLeNetStages = [][]inception{
	{{"inception3a", 64, 96, 128, 16, 32, 32}, {"inception3b", 128, 128, 192, 32, 96, 64}},
	{{"inception4a", 192, 96, 208, 16, 48, 64}, {"inception4b", 160, 112, 224, 24, 64, 64},
		{"inception4c", 128, 128, 256, 24, 64, 64}, {"inception4d", 112, 144, 288, 32, 64, 64},
		{"inception4e", 256, 160, 320, 32, 128, 128}},
	{{"inception5a", 256, 160, 320, 32, 128, 128}, {"inception5b", 384, 192, 384, 48, 128, 128}},
}

// GoogLeNet is the study's GoogLeNet on 224×224 input: a stem with no
// activations, nine inception modules, 7×7 average pool, dropout and one dense
// layer; no batch norm, no auxiliary classifiers (5,972,467 parameters at 3
// classes).
func GoogLeNet(n *tfops.Net, x tf.Output, cfg Config) tf.Output {
	pool := tfops.Pool{Size: 3, Stride: 2, Pad: 1}
	x = n.Conv2D("conv1", x, tfops.Conv{Filters: 64, Kernel: 7, Stride: 2, Pad: 3, Bias: true}) // 112
	x = n.MaxPool("pool1", x, pool)                                                             // 56
	x = n.Conv2D("conv2", x, tfops.Conv{Filters: 192, Kernel: 3, Pad: 1, Bias: true})           // 56
	x = n.MaxPool("pool2", x, pool)                                                             // 28
	for i, stage := range googLeNetStages {
		if i > 0 {
			x = n.MaxPool([]string{"", "pool3", "pool4"}[i], x, pool) // 14, 7
		}
		for _, m := range stage {
			x = inceptionBlock(n.Sub(m.name), x, m)
		}
	}
	x = n.Flatten("flatten", n.AvgPool("avgpool", x, tfops.Pool{Size: 7, Stride: 1}))
	return n.Dense("fc", n.Dropout("dropout", x, cfg.Dropout), int64(cfg.NumClasses))
}

// inceptionBlock concatenates, in this order: 1×1 | 1×1 → 3×3 | 1×1 → 5×5 |
// 3×3 max pool → 1×1, every convolution followed by ReLU.
func inceptionBlock(n *tfops.Net, x tf.Output, m inception) tf.Output {
	conv := func(name string, x tf.Output, filters, kernel int64) tf.Output {
		return n.ReLU(n.Conv2D(name, x, tfops.Conv{Filters: filters, Kernel: kernel, Pad: kernel / 2, Bias: true}))
	}
	b1 := conv("b1_1x1", x, m.c1x1, 1)
	b2 := conv("b2_3x3", conv("b2_1x1", x, m.c3x3red, 1), m.c3x3, 3)
	b3 := conv("b3_5x5", conv("b3_1x1", x, m.c5x5red, 1), m.c5x5, 5)
	b4 := conv("b4_1x1", n.MaxPool("b4_pool", x, tfops.Pool{Size: 3, Stride: 1, Pad: 1}), m.proj, 1)
	return n.Concat("concat", b1, b2, b3, b4)
}
