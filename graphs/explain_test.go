package graphs

import (
	"errors"
	"math/rand"
	"testing"

	tf "github.com/galeone/tensorflow/tensorflow/go"
	"github.com/galeone/tensorflow/tensorflow/go/op"

	"github.com/kfash-tf/kfash-tf/graphs/runs"
	"github.com/kfash-tf/kfash-tf/models"
	"github.com/kfash-tf/kfash-tf/tfops"
)

// quadrantImages draws n 32×32 RGB images in [0,1]: noise and bright bars
// everywhere but the top-left quadrant, and, for label 1, a bright square
// at a random place inside that quadrant; the square is the only thing
// that sets the class.
func quadrantImages(rng *rand.Rand, n int) (images []float32, labels []int32) {
	const s = 32
	images = make([]float32, n*s*s*3)
	labels = make([]int32, n)
	for i := 0; i < n; i++ {
		img := images[i*s*s*3 : (i+1)*s*s*3]
		set := func(y, x int, v float32) {
			for c := 0; c < 3; c++ {
				img[(y*s+x)*3+c] = v
			}
		}
		for p := range img {
			img[p] = 0.3 * rng.Float32()
		}
		for b := 0; b < 3; b++ { // clutter: bright bars outside the top-left quadrant
			y, x := rng.Intn(s-8), rng.Intn(s-8)
			for y < s/2 && x < s/2 { // a bar starting outside runs right or down, away from it
				y, x = rng.Intn(s-8), rng.Intn(s-8)
			}
			for k := 0; k < 8; k++ {
				if b%2 == 0 {
					set(y, x+k, 0.9)
				} else {
					set(y+k, x, 0.9)
				}
			}
		}
		if rng.Intn(2) == 1 {
			labels[i] = 1
			y, x := rng.Intn(s/2-6), rng.Intn(s/2-6)
			for dy := 0; dy < 6; dy++ {
				for dx := 0; dx < 6; dx++ {
					set(y+dy, x+dx, 1)
				}
			}
		}
	}
	return images, labels
}

// trainQuadrantNet trains a tiny conv net on the quadrant images with the
// given labels and returns the mean share of Grad-CAM's mass (for class 1)
// inside the top-left quadrant over fresh class-1 images, and the test accuracy.
func trainQuadrantNet(t *testing.T, shuffle bool) (mass, acc float64) {
	t.Helper()
	const s, batch, steps = 32, 64, 150
	g := tf.NewGraph()
	root := op.NewScopeWithGraph(g)
	store := tfops.NewStore(root.SubScope("vars"), 7)
	x := op.Placeholder(root.SubScope("x"), tf.Float, op.PlaceholderShape(tf.MakeShape(-1, s, s, 3)))
	y := op.Placeholder(root.SubScope("y"), tf.Int32, op.PlaceholderShape(tf.MakeShape(-1)))
	n := tfops.NewNet(root.SubScope("net"), store, tfops.Inference)
	h := n.ReLU(n.Conv2D("conv1", x, tfops.Conv{Filters: 16, Kernel: 3, Pad: 1, Bias: true}))
	h = n.MaxPool("pool1", h, tfops.Pool{Size: 2, Stride: 2})
	h = n.ReLU(n.Conv2D("conv2", h, tfops.Conv{Filters: 32, Kernel: 3, Pad: 1, Bias: true}))
	feature, _ := n.LayerOutput("conv2")
	logits := n.Dense("fc", n.GlobalAvgPool("gap", h), 2)
	loss := op.Mean(root.SubScope("loss"), tfops.SoftmaxCrossEntropy(root, logits, y, 2, 0), op.Const(root.SubScope("axis"), int32(0)))
	if err := root.Err(); err != nil {
		t.Fatal(err)
	}
	vars := store.Trainable()
	reads := make([]tf.Output, len(vars))
	for i, v := range vars {
		reads[i] = n.Reads()[v]
	}
	grads, err := g.AddGradients("train_grads", []tf.Output{loss}, reads, nil)
	if err != nil {
		t.Fatal(err)
	}
	step, err := ApplyGradients(root.SubScope("adam"), store, runs.OptimizerConfig{Name: "adam"}, vars, grads, op.Const(root.SubScope("lr"), float32(3e-3)))
	if err != nil {
		t.Fatal(err)
	}
	cam, err := BuildGradCAM(g, root.SubScope("explain"), FeatureMapAfter(feature), logits, s)
	if err != nil {
		t.Fatal(err)
	}
	sess, err := tf.NewSession(g, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	if _, err := sess.Run(nil, nil, store.InitOps()); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewSource(1))
	for i := 0; i < steps; i++ {
		imgs, labels := quadrantImages(rng, batch)
		if shuffle {
			rng.Shuffle(len(labels), func(a, b int) { labels[a], labels[b] = labels[b], labels[a] })
		}
		if _, err := sess.Run(feedsOf(t, x, imgs, batch, y, labels), nil, []*tf.Operation{step}); err != nil {
			t.Fatal(err)
		}
	}
	imgs, labels := quadrantImages(rand.New(rand.NewSource(99)), 128)
	targets := make([]int32, len(labels))
	for i := range targets {
		targets[i] = 1
	}
	feeds := feedsOf(t, x, imgs, len(labels), cam.Target, targets)
	out, err := sess.Run(feeds, []tf.Output{cam.Map, logits}, nil)
	if err != nil {
		t.Fatal(err)
	}
	maps, lg := out[0].Value().([][][]float32), out[1].Value().([][]float32)
	var positives int
	for i, m := range maps {
		if (lg[i][1] > lg[i][0]) == (labels[i] == 1) {
			acc++
		}
		if labels[i] != 1 {
			continue
		}
		inside, total := 0.0, 0.0
		for r := range m {
			for c, v := range m[r] {
				total += float64(v)
				if r < s/2 && c < s/2 {
					inside += float64(v)
				}
			}
		}
		if total > 0 {
			mass += inside / total
		}
		positives++
	}
	return mass / float64(positives), acc / float64(len(labels))
}

func feedsOf(t *testing.T, x tf.Output, imgs []float32, n int, y tf.Output, labels []int32) map[tf.Output]*tf.Tensor {
	t.Helper()
	xt, err := tfops.Float32Tensor(imgs, []int64{int64(n), 32, 32, 3})
	if err != nil {
		t.Fatal(err)
	}
	yt, err := tf.NewTensor(labels)
	if err != nil {
		t.Fatal(err)
	}
	return map[tf.Output]*tf.Tensor{x: xt, y: yt}
}

// Grad-CAM of a network that learnt "a bright square in the top-left
// quadrant means class 1" puts most of its mass in that quadrant; the same
// network trained on shuffled labels learns nothing there and must not.
func TestExplainGradCAMFindsTheQuadrant(t *testing.T) {
	mass, acc := trainQuadrantNet(t, false)
	t.Logf("trained: accuracy %.3f, Grad-CAM mass in the quadrant %.3f", acc, mass)
	if acc < 0.9 {
		t.Fatalf("the net did not learn the task (accuracy %.3f): the test says nothing", acc)
	}
	if mass <= 0.7 {
		t.Errorf("Grad-CAM mass inside the quadrant = %.3f, want > 0.7", mass)
	}
	ctl, cacc := trainQuadrantNet(t, true)
	t.Logf("shuffled labels: accuracy %.3f, Grad-CAM mass in the quadrant %.3f", cacc, ctl)
	if ctl > 0.7 {
		t.Errorf("control (shuffled labels): mass inside the quadrant = %.3f, want ≤ 0.7", ctl)
	}
}

func explainConfig(network string) runs.Config {
	return runs.Config{Network: network, Classes: []string{"a", "b", "c"}, Std: [3]float32{64, 64, 64}, Mean: [3]float32{128, 128, 128}, Seed: 3}
}

// Every network's default Grad-CAM layer resolves and its gradient builds;
// an unknown layer is a typed error naming the network.
func TestExplainBuildsForEveryNetwork(t *testing.T) {
	for _, name := range models.Names() {
		ig, err := BuildInferenceGraph(explainConfig(name))
		if err != nil {
			t.Fatal(err)
		}
		cam, err := AddGradCAM(ig, "")
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if got, _ := cam.Map.Shape().ToSlice(); len(got) != 3 || got[1] != int64(ig.Spec.InputSize) {
			t.Errorf("%s: map shape %v", name, got)
		}
	}
	ig, err := BuildInferenceGraph(explainConfig("vgg8"))
	if err != nil {
		t.Fatal(err)
	}
	var ule *UnknownLayerError
	if _, err := AddGradCAM(ig, "fc"); !errors.As(err, &ule) || ule.Network != "vgg8" {
		t.Errorf("layer fc (dense): got %v, want an UnknownLayerError", err)
	}
}
