package models

import (
	"math"
	"testing"

	tf "github.com/galeone/tensorflow/tensorflow/go"
	"github.com/galeone/tensorflow/tensorflow/go/op"

	"github.com/kfash-tf/kfash-tf/tfops"
	"github.com/kfash-tf/kfash-tf/tfops/tfopstest"
)

// The last dense layer has fanIn·classes + classes parameters, so the count
// moves by fanIn+1 per class.
func TestTrainableParamsFollowClassCount(t *testing.T) {
	headFanIn := map[string]int64{"alexnet": 4096, "vgg8": 2048, "vgg10": 4608, "googlenet": 1024, "resnet34": 512, "densenet": 384}
	for _, spec := range All() {
		for _, classes := range []int{2, 10} {
			sum, err := Summarize(spec, Config{NumClasses: classes, Dropout: 0.5})
			if err != nil {
				t.Fatal(err)
			}
			want := spec.Params + int64(classes-3)*(headFanIn[spec.Name]+1)
			if sum.TrainableParams != want {
				t.Errorf("%s at %d classes: %d trainable params, want %d", spec.Name, classes, sum.TrainableParams, want)
			}
			if sum.Output[0] != int64(classes) {
				t.Errorf("%s at %d classes: output %v", spec.Name, classes, sum.Output)
			}
		}
	}
}

// Non-trainable parameters are the BN moving statistics: 2 per BN channel.
func TestNonTrainableAreMovingStatistics(t *testing.T) {
	want := map[string]int64{
		"alexnet": 2 * (96 + 256), "vgg8": 0, "vgg10": 0, "googlenet": 0,
		// stem 64; 16 blocks × 2 BNs; 3 projections.
		"resnet34": 2 * (64 + 3*2*64 + 4*2*128 + 6*2*256 + 3*2*512 + 128 + 256 + 512),
		"densenet": densenetMoving(),
	}
	for _, spec := range All() {
		sum, err := Summarize(spec, spec.Config(3))
		if err != nil {
			t.Fatal(err)
		}
		if sum.NonTrainableParams != want[spec.Name] {
			t.Errorf("%s: %d non-trainable, want %d", spec.Name, sum.NonTrainableParams, want[spec.Name])
		}
	}
}

// densenetMoving counts the BN channels of DenseNet-BC from its definition:
// every dense layer on c channels has BN(c) and BN(48); every transition BN(c);
// the final BN(384). Moving mean + variance = 2 per channel.
func densenetMoving() int64 {
	c, channels := int64(24), int64(0)
	for i, layers := range denseNetBlocks {
		for j := 0; j < layers; j++ {
			channels += c + denseBottleneck
			c += denseGrowth
		}
		if i < len(denseNetBlocks)-1 {
			channels += c
			c /= 2
		}
	}
	return 2 * (channels + c)
}

// FLOPs are 2 × MACs of convs and dense layers; spot-check AlexNet's conv1:
// 11·11·3 MACs per output, 96×55×55 outputs.
func TestForwardFLOPs(t *testing.T) {
	spec, _ := Get("alexnet")
	sum, err := Summarize(spec, spec.Config(3))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := sum.Layers[0].FLOPs, int64(2*11*11*3*96*55*55); got != want {
		t.Errorf("conv1 FLOPs %d, want %d", got, want)
	}
	if sum.ForwardFLOPs < 2_000_000_000 || sum.ForwardFLOPs > 2_600_000_000 {
		t.Errorf("AlexNet forward FLOPs %d, expected about 2.3 G", sum.ForwardFLOPs)
	}
}

// runNet builds spec in mode at the given batch size, initialises it and
// returns the logits, the loss gradients of every trainable variable (in
// training mode) and the session.
func runNet(t *testing.T, spec Spec, mode tfops.Mode, batch int64) (logits []float32, grads map[string][]float32) {
	t.Helper()
	g := tf.NewGraph()
	s := op.NewScopeWithGraph(g)
	store := tfops.NewStore(s.SubScope("vars"), 1)
	size := int64(spec.InputSize)
	x := op.Placeholder(s.SubScope("images"), tf.Float, op.PlaceholderShape(tf.MakeShape(-1, size, size, 3)))
	labels := op.Placeholder(s.SubScope("labels"), tf.Int32, op.PlaceholderShape(tf.MakeShape(-1)))
	n := tfops.NewNet(s.SubScope(mode.String()), store, mode)
	out := spec.Build(n, x, spec.Config(3))
	loss := op.Mean(s.SubScope("loss"), tfops.SoftmaxCrossEntropy(s, out, labels, 3, 0), op.Const(s.SubScope("axis"), []int32{0}))
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	fetch := []tf.Output{out, loss}
	var vars []*tfops.Variable
	if mode == tfops.Training {
		var wrt []tf.Output
		for _, v := range store.Trainable() {
			vars = append(vars, v)
			wrt = append(wrt, n.Reads()[v])
		}
		dw, err := g.AddGradients("grad", []tf.Output{loss}, wrt, nil)
		if err != nil {
			t.Fatalf("AddGradients: %v", err)
		}
		fetch = append(fetch, dw...)
	}
	sess, err := tf.NewSession(g, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	if _, err := sess.Run(nil, nil, store.InitOps()); err != nil {
		t.Fatal(err)
	}
	img := make([]float32, batch*size*size*3)
	for i := range img {
		img[i] = float32(i%251) / 251
	}
	xt, _ := tfops.Float32Tensor(img, []int64{batch, size, size, 3})
	lt, _ := tf.NewTensor(make([]int32, batch))
	res, err := sess.Run(map[tf.Output]*tf.Tensor{x: xt, labels: lt}, fetch, n.Updates())
	if err != nil {
		t.Fatal(err)
	}
	if shape := res[0].Shape(); len(shape) != 2 || shape[0] != batch || shape[1] != 3 {
		t.Fatalf("logits shape %v, want [%d 3]", shape, batch)
	}
	logits, _ = tfops.Float32s(res[0])
	if l := res[1].Value().(float32); math.IsNaN(float64(l)) || math.IsInf(float64(l), 0) {
		t.Fatalf("loss %v", l)
	}
	grads = map[string][]float32{}
	for i, v := range vars {
		grads[v.Name], _ = tfops.Float32s(res[2+i])
	}
	return logits, grads
}

func finite(v []float32) bool {
	for _, x := range v {
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return false
		}
	}
	return true
}

func TestOutputShapesBatch2(t *testing.T) {
	for _, spec := range All() {
		t.Run(spec.Name, func(t *testing.T) {
			logits, _ := runNet(t, spec, tfops.Inference, 2)
			if !finite(logits) {
				t.Errorf("non-finite logits %v", logits)
			}
		})
	}
}

// One forward and backward pass of every network at batch 1: every trainable
// variable gets a finite gradient, and the classifier's is not all zero.
func TestForwardBackwardBatch1(t *testing.T) {
	for _, spec := range All() {
		t.Run(spec.Name, func(t *testing.T) {
			_, grads := runNet(t, spec, tfops.Training, 1)
			sum, _ := Summarize(spec, spec.Config(3))
			var count int64
			for name, g := range grads {
				if !finite(g) {
					t.Errorf("%s: non-finite gradient", name)
				}
				count += int64(len(g))
			}
			if count != sum.TrainableParams {
				t.Errorf("gradients cover %d parameters, network has %d", count, sum.TrainableParams)
			}
			nonzero := false
			for _, v := range grads[lastKernel(grads)] {
				nonzero = nonzero || v != 0
			}
			if !nonzero {
				t.Errorf("classifier gradient %s is all zero", lastKernel(grads))
			}
		})
	}
}

func lastKernel(grads map[string][]float32) string {
	for _, name := range []string{"fc8/kernel", "fc/kernel"} {
		if _, ok := grads[name]; ok {
			return name
		}
	}
	return ""
}

// Each block's gradient agrees with finite differences, on tiny instances.
func TestBlockGradients(t *testing.T) {
	cases := []struct {
		name  string
		shape []int64
		build tfopstest.BuildFunc
	}{
		{"inception", []int64{2, 5, 5, 4}, func(n *tfops.Net, x tf.Output) tf.Output {
			return inceptionBlock(n, x, inception{"tiny", 2, 2, 3, 1, 2, 2})
		}},
		{"basic_block_projection", []int64{2, 6, 6, 3}, func(n *tfops.Net, x tf.Output) tf.Output {
			return basicBlock(n, x, 4, 2)
		}},
		{"basic_block_identity", []int64{2, 5, 5, 4}, func(n *tfops.Net, x tf.Output) tf.Output {
			return basicBlock(n, x, 4, 1)
		}},
		{"dense_layer_transition", []int64{2, 4, 4, 6}, func(n *tfops.Net, x tf.Output) tf.Output {
			return transition(n.Sub("t"), denseLayer(n.Sub("l"), x))
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res, err := tfopstest.Check(c.build, c.shape, tfops.Training, 4, 1e-2, 3)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("max rel err %.2g over %d directions, %d variables", res.MaxRelErr(), len(res.Analytic), res.Params)
			if e := res.MaxRelErr(); e > tfopstest.Tolerance {
				t.Errorf("rel err %.3g > %.3g (analytic %v, numeric %v)", e, tfopstest.Tolerance, res.Analytic, res.Numeric)
			}
		})
	}
}
