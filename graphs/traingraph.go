package graphs

import (
	"fmt"

	tf "github.com/galeone/tensorflow/tensorflow/go"
	"github.com/galeone/tensorflow/tensorflow/go/op"
	tfgo "github.com/galeone/tfgo"

	"github.com/kfash-tf/kfash-tf/graphs/runs"
	"github.com/kfash-tf/kfash-tf/models"
	"github.com/kfash-tf/kfash-tf/tfops"
)

// ModelConfig is everything that shapes a training graph.
type ModelConfig struct {
	Network        models.Spec
	Net            models.Config // classes and dropout
	Mean, Std      [3]float32    // preprocessing: (pixel − mean) / std on 0–255 RGB
	LabelSmoothing float32
	ClassWeights   []float32        // nil: all 1; else one weight per class (PyTorch's weighted mean)
	Seed           int64            // initial weights and dropout masks
	Init           tfops.InitScheme // initial kernels and biases; "" is tfops.InitTorch
	Optimizer      runs.OptimizerConfig
	// Sync, when set, makes the graph one replica of synchronous
	// data-parallel training (see SyncConfig and collective.go): the
	// gradients are averaged over the tasks before the optimizer. Nil
	// builds the one-process graph, unchanged.
	Sync *SyncConfig
}

// TrainGraph holds one graph with a training path and an inference path
// that share the network's variables. Both paths read the same inputs;
// running a fetch of one path does not run the other.
type TrainGraph struct {
	Graph *tf.Graph
	Store *tfops.Store
	Saver *Saver

	// Inputs.
	Images  tf.Output // float32 [N,S,S,3], RGB 0–255 (preprocessing is in the graph)
	Labels  tf.Output // int32 [N]
	LR      tf.Output // float32 scalar learning rate, fed every step by the schedule
	RNGStep tf.Output // int64 scalar, the global step: seeds dropout masks

	// Training path.
	Loss    tf.Output     // scalar: weighted mean cross-entropy of the batch
	Correct tf.Output     // int32 scalar: correctly classified examples of the batch
	Step    *tf.Operation // one optimisation step (gradients, optimizer, BN moving averages)
	Params  []*tfops.Variable

	// Inference path.
	Logits      tf.Output // float32 [N,K]
	Probs       tf.Output // float32 [N,K] softmax
	ExampleLoss tf.Output // float32 [N] unweighted cross-entropy per example
	Predictions tf.Output // int64 [N] argmax

	sync *syncOps // the collectives of a replica (ModelConfig.Sync); nil for one process
}

// Replicated reports whether the graph is a replica of synchronous
// data-parallel training (built with ModelConfig.Sync).
func (tg *TrainGraph) Replicated() bool { return tg.sync != nil }

// Preprocess applies (x − mean) / std per channel, the one preprocessing
// definition shared by training, evaluation, prediction and export.
func Preprocess(s *op.Scope, images tf.Output, mean, std [3]float32) tf.Output {
	if mean == [3]float32{} && std == [3]float32{1, 1, 1} {
		// No normalisation (raw 0–255, the default): two passes over every
		// batch saved.
		return images
	}
	s = s.SubScope("preprocess")
	inv := [3]float32{1 / std[0], 1 / std[1], 1 / std[2]}
	centred := op.Sub(s, images, tfgo.Const(s, mean[:]))
	return op.Mul(s, centred, tfgo.Const(s, inv[:]))
}

// BuildTrainGraph assembles the training graph of cfg.Network.
func BuildTrainGraph(cfg ModelConfig) (*TrainGraph, error) {
	if cfg.Net.NumClasses < 2 {
		return nil, fmt.Errorf("a classifier needs at least 2 classes, got %d", cfg.Net.NumClasses)
	}
	if cfg.ClassWeights != nil && len(cfg.ClassWeights) != cfg.Net.NumClasses {
		return nil, fmt.Errorf("%d class weights for %d classes", len(cfg.ClassWeights), cfg.Net.NumClasses)
	}
	if cfg.Sync != nil && (cfg.Sync.Tasks < 1 || cfg.Sync.Timeout <= 0) {
		return nil, fmt.Errorf("a replica needs tasks and a positive timeout, got %d tasks and %v", cfg.Sync.Tasks, cfg.Sync.Timeout)
	}
	g := tf.NewGraph()
	root := op.NewScopeWithGraph(g)
	tg := &TrainGraph{Graph: g, Store: tfops.NewStore(root.SubScope("vars"), cfg.Seed).WithInit(cfg.Init)}
	size := int64(cfg.Network.InputSize)
	classes := int64(cfg.Net.NumClasses)
	tg.Images = op.Placeholder(root.SubScope("images"), tf.Float, op.PlaceholderShape(tf.MakeShape(-1, size, size, 3)))
	tg.Labels = op.Placeholder(root.SubScope("labels"), tf.Int32, op.PlaceholderShape(tf.MakeShape(-1)))
	tg.LR = op.Placeholder(root.SubScope("lr"), tf.Float, op.PlaceholderShape(tf.ScalarShape()))
	x := Preprocess(root, tg.Images, cfg.Mean, cfg.Std)

	// Training path.
	ts := root.SubScope("train")
	train := tfops.NewNet(ts, tg.Store, tfops.Training)
	tg.RNGStep = train.RNGStep()
	logits := cfg.Network.Build(train, x, cfg.Net)
	perExample := tfops.SoftmaxCrossEntropy(ts, logits, tg.Labels, classes, cfg.LabelSmoothing)
	tg.Loss = weightedMean(ts.SubScope("loss"), perExample, tg.Labels, cfg.ClassWeights)
	tg.Correct = correct(ts.SubScope("accuracy"), logits, tg.Labels)

	// Inference path.
	is := root.SubScope("infer")
	infer := tfops.NewNet(is, tg.Store, tfops.Inference)
	tg.Logits = cfg.Network.Build(infer, x, cfg.Net)
	tg.Probs = op.Softmax(is.SubScope("probabilities"), tg.Logits)
	tg.ExampleLoss = tfops.SoftmaxCrossEntropy(is, tg.Logits, tg.Labels, classes, 0)
	tg.Predictions = op.ArgMax(is.SubScope("predictions"), tg.Logits, tfgo.Const(is, int32(1)))
	if err := root.Err(); err != nil {
		return nil, fmt.Errorf("building %s: %w", cfg.Network.Name, err)
	}

	// Gradients with respect to each trainable variable's read in the
	// training path, then the optimizer and the BN moving-average updates.
	reads := train.Reads()
	var wrt []tf.Output
	for _, v := range tg.Store.Trainable() {
		r, ok := reads[v]
		if !ok {
			return nil, fmt.Errorf("variable %s is not used by the training path", v.Name)
		}
		tg.Params = append(tg.Params, v)
		wrt = append(wrt, r)
	}
	grads, err := g.AddGradients("gradients", []tf.Output{tg.Loss}, wrt, nil)
	if err != nil {
		return nil, fmt.Errorf("gradients of %s: %w", cfg.Network.Name, err)
	}
	// Lets grappler fuse each Conv2D/MatMul + BiasAdd + Relu of the
	// training pass (see tfops.ReluGradsFromOutputs).
	if _, err := tfops.ReluGradsFromOutputs(g); err != nil {
		return nil, fmt.Errorf("gradients of %s: %w", cfg.Network.Name, err)
	}
	if cfg.Sync != nil {
		// Every task applies the mean of the tasks' gradients (clipping
		// and weight decay come after, in the optimizer, as for one
		// process on the global batch).
		grads = tg.addSyncStep(root.SubScope("sync"), *cfg.Sync, grads)
	}
	apply, err := ApplyGradients(root.SubScope("optimizer"), tg.Store, cfg.Optimizer, tg.Params, grads, tg.LR)
	if err != nil {
		return nil, err
	}
	deps := append([]*tf.Operation{apply}, train.Updates()...)
	tg.Step = op.NoOp(root.SubScope("step").WithControlDependencies(deps...))
	if tg.Saver, err = NewSaver(root.SubScope("saver"), tg.Store.Variables()); err != nil {
		return nil, err
	}
	if cfg.Sync != nil {
		// After the optimizer: its slots are broadcast too.
		tg.addSyncStartAndEpoch(root.SubScope("sync"), cfg.Net.NumClasses)
	}
	if err := root.Err(); err != nil {
		return nil, fmt.Errorf("building %s: %w", cfg.Network.Name, err)
	}
	return tg, nil
}

// weightedMean is Σ wᵢ·lossᵢ / Σ wᵢ with wᵢ the weight of example i's class
// (PyTorch's CrossEntropyLoss(weight=...)), or the plain mean without
// weights: the mean loss per example, whatever the batch size.
func weightedMean(s *op.Scope, perExample, labels tf.Output, weights []float32) tf.Output {
	axis := tfgo.Const(s, []int32{0})
	if weights == nil {
		return op.Mean(s, perExample, axis)
	}
	w := op.GatherV2(s, tfgo.Const(s, weights), labels, tfgo.Const(s, int32(0)))
	num := op.Sum(s.SubScope("num"), op.Mul(s, perExample, w), axis)
	return op.Div(s, num, op.Sum(s.SubScope("den"), w, axis))
}

// correct counts the examples whose argmax equals the label.
func correct(s *op.Scope, logits, labels tf.Output) tf.Output {
	pred := tfgo.Cast(s.SubScope("pred"), op.ArgMax(s, logits, tfgo.Const(s, int32(1))), tf.Int32)
	hits := tfgo.Cast(s.SubScope("hits"), op.Equal(s, pred, labels), tf.Int32)
	return op.Sum(s, hits, tfgo.Const(s, []int32{0}))
}
