package tfops_test

import (
	"testing"

	tf "github.com/galeone/tensorflow/tensorflow/go"
	"github.com/galeone/tensorflow/tensorflow/go/op"

	"github.com/kfash-tf/kfash-tf/tfops"
	"github.com/kfash-tf/kfash-tf/tfops/tfopstest"
)

// Every layer type's AddGradients gradient agrees with central finite
// differences, with respect to the input and all trainable variables.
func TestLayerGradients(t *testing.T) {
	cases := []struct {
		name  string
		shape []int64
		mode  tfops.Mode
		build tfopstest.BuildFunc
	}{
		{"conv_valid_bias", []int64{2, 6, 6, 3}, tfops.Training, func(n *tfops.Net, x tf.Output) tf.Output {
			return n.Conv2D("c", x, tfops.Conv{Filters: 4, Kernel: 3, Bias: true})
		}},
		{"conv_same_nobias", []int64{2, 5, 5, 3}, tfops.Training, func(n *tfops.Net, x tf.Output) tf.Output {
			return n.Conv2D("c", x, tfops.Conv{Filters: 4, Kernel: 3, Pad: 1})
		}},
		{"conv_stride2_pad3_he", []int64{1, 9, 9, 2}, tfops.Training, func(n *tfops.Net, x tf.Output) tf.Output {
			return n.Conv2D("c", x, tfops.Conv{Filters: 3, Kernel: 7, Stride: 2, Pad: 3, Init: tfops.HeFanOut})
		}},
		{"dense", []int64{3, 5}, tfops.Training, func(n *tfops.Net, x tf.Output) tf.Output {
			return n.Dense("d", x, 4)
		}},
		{"maxpool_valid", []int64{2, 7, 7, 2}, tfops.Training, func(n *tfops.Net, x tf.Output) tf.Output {
			return n.MaxPool("p", x, tfops.Pool{Size: 3, Stride: 2})
		}},
		{"maxpool_pad_neg_inf", []int64{2, 6, 6, 2}, tfops.Training, func(n *tfops.Net, x tf.Output) tf.Output {
			return n.MaxPool("p", x, tfops.Pool{Size: 3, Stride: 2, Pad: 1})
		}},
		{"maxpool_same_s1", []int64{1, 5, 5, 2}, tfops.Training, func(n *tfops.Net, x tf.Output) tf.Output {
			return n.MaxPool("p", x, tfops.Pool{Size: 3, Stride: 1, Pad: 1})
		}},
		{"avgpool", []int64{2, 6, 6, 3}, tfops.Training, func(n *tfops.Net, x tf.Output) tf.Output {
			return n.AvgPool("p", x, tfops.Pool{Size: 2, Stride: 2})
		}},
		{"global_avgpool", []int64{2, 4, 4, 3}, tfops.Training, func(n *tfops.Net, x tf.Output) tf.Output {
			return n.GlobalAvgPool("g", x)
		}},
		{"batchnorm_training", []int64{4, 3, 3, 5}, tfops.Training, func(n *tfops.Net, x tf.Output) tf.Output {
			return n.BatchNorm("bn", x)
		}},
		{"batchnorm_inference", []int64{2, 3, 3, 5}, tfops.Inference, func(n *tfops.Net, x tf.Output) tf.Output {
			return n.BatchNorm("bn", x)
		}},
		{"dropout_training", []int64{4, 10}, tfops.Training, func(n *tfops.Net, x tf.Output) tf.Output {
			return n.Dropout("drop", x, 0.5)
		}},
		{"relu", []int64{3, 8}, tfops.Training, func(n *tfops.Net, x tf.Output) tf.Output {
			return n.ReLU(x)
		}},
		{"concat", []int64{2, 3, 3, 2}, tfops.Training, func(n *tfops.Net, x tf.Output) tf.Output {
			a := n.Conv2D("a", x, tfops.Conv{Filters: 2, Kernel: 1})
			return n.Concat("cat", x, a)
		}},
		{"flatten_add", []int64{2, 3, 3, 2}, tfops.Training, func(n *tfops.Net, x tf.Output) tf.Output {
			return n.Flatten("f", n.Add("add", x, x))
		}},
		{"softmax_xent_smoothing", []int64{4, 3}, tfops.Training, func(n *tfops.Net, x tf.Output) tf.Output {
			labels := constLabels(n, []int32{0, 2, 1, 2})
			return tfops.SoftmaxCrossEntropy(n.Scope(), x, labels, 3, 0.1)
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res, err := tfopstest.Check(c.build, c.shape, c.mode, 4, 1e-2, 7)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("max rel err %.2g over %d directions, %d variables", res.MaxRelErr(), len(res.Analytic), res.Params)
			if e := res.MaxRelErr(); e > tfopstest.Tolerance {
				t.Errorf("gradient mismatch: rel err %.3g > %.3g (analytic %v, numeric %v)", e, tfopstest.Tolerance, res.Analytic, res.Numeric)
			}
		})
	}
}

func constLabels(n *tfops.Net, v []int32) tf.Output {
	return op.Const(n.Scope().SubScope("labels"), v)
}

// The check itself must fail on a wrong gradient: y = x·stop_gradient(x) has
// an AddGradients gradient of x where the true derivative is 2x.
func TestGradCheckCatchesWrongGradient(t *testing.T) {
	res, err := tfopstest.Check(func(n *tfops.Net, x tf.Output) tf.Output {
		s := n.Scope()
		return op.Mul(s.SubScope("mul"), x, op.StopGradient(s.SubScope("stop"), x))
	}, []int64{3, 4}, tfops.Training, 3, 1e-2, 1)
	if err != nil {
		t.Fatal(err)
	}
	if e := res.MaxRelErr(); e < 0.3 {
		t.Fatalf("a gradient off by a factor 2 passed the check (rel err %.3g)", e)
	}
}
