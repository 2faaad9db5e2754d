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

// InferenceGraph is the graph evaluation, prediction, export and serving
// run: preprocessing and the network in inference mode, nothing that needs
// a training flag, and a Saver over the network's variables only (a
// training checkpoint holds those and more; restoring a subset is fine).
type InferenceGraph struct {
	Graph *tf.Graph
	Store *tfops.Store
	Saver *Saver
	Spec  models.Spec

	Images      tf.Output // input: float32 [N,S,S,3], RGB 0–255
	Labels      tf.Output // optional input for ExampleLoss: int32 [N]
	Logits      tf.Output // float32 [N,K]
	Probs       tf.Output // float32 [N,K]
	Classes     tf.Output // int64 [N]: argmax
	ClassNames  tf.Output // string [N]: the class name of Classes
	ExampleLoss tf.Output // float32 [N]: cross-entropy per example (needs Labels)

	net *tfops.Net // the build, for AddGradCAM to find a layer's feature map
}

// BuildInferenceGraph builds the inference graph of a run's configuration.
func BuildInferenceGraph(cfg runs.Config) (*InferenceGraph, error) {
	return buildInferenceGraph(cfg, nil)
}

// imagesInput builds an inference graph's Images input under s (the
// "images" scope) in place of the plain placeholder: the SavedModel export
// makes it a PlaceholderWithDefault fed by the in-graph image decoder.
type imagesInput func(g *tf.Graph, s *op.Scope, size int64) (tf.Output, error)

// buildInferenceGraph is BuildInferenceGraph with Images built by images
// when it is not nil.
func buildInferenceGraph(cfg runs.Config, images imagesInput) (*InferenceGraph, error) {
	spec, err := models.Get(cfg.Network)
	if err != nil {
		return nil, err
	}
	if len(cfg.Classes) < 2 {
		return nil, fmt.Errorf("run configuration has %d classes; need at least 2", len(cfg.Classes))
	}
	g := tf.NewGraph()
	root := op.NewScopeWithGraph(g)
	ig := &InferenceGraph{Graph: g, Store: tfops.NewStore(root.SubScope("vars"), cfg.Seed), Spec: spec}
	size := int64(spec.InputSize)
	if images == nil {
		ig.Images = op.Placeholder(root.SubScope("images"), tf.Float, op.PlaceholderShape(tf.MakeShape(-1, size, size, 3)))
	} else if ig.Images, err = images(g, root.SubScope("images"), size); err != nil {
		return nil, err
	}
	ig.Labels = op.Placeholder(root.SubScope("labels"), tf.Int32, op.PlaceholderShape(tf.MakeShape(-1)))
	x := Preprocess(root, ig.Images, cfg.Mean, cfg.Std)
	s := root.SubScope("infer")
	net := tfops.NewNet(s, ig.Store, tfops.Inference)
	ig.net = net
	ig.Logits = spec.Build(net, x, models.Config{NumClasses: len(cfg.Classes), Dropout: cfg.Dropout})
	ig.Probs = op.Softmax(s.SubScope("probabilities"), ig.Logits)
	ig.Classes = op.ArgMax(s.SubScope("classes"), ig.Logits, tfgo.Const(s, int32(1)))
	ig.ClassNames = op.GatherV2(s.SubScope("class_names"), tfgo.Const(s, cfg.Classes), ig.Classes, tfgo.Const(s, int32(0)))
	ig.ExampleLoss = tfops.SoftmaxCrossEntropy(s, ig.Logits, ig.Labels, int64(len(cfg.Classes)), 0)
	if err := root.Err(); err != nil {
		return nil, fmt.Errorf("building %s: %w", spec.Name, err)
	}
	if ig.Saver, err = NewSaver(root.SubScope("saver"), ig.Store.Variables()); err != nil {
		return nil, err
	}
	return ig, root.Err()
}

// Predictor runs an InferenceGraph restored from a checkpoint.
type Predictor struct {
	IG   *InferenceGraph
	Sess *tf.Session
	size int64
}

// NewPredictor opens a session on ig and restores the variables from the
// checkpoint prefix.
func NewPredictor(ig *InferenceGraph, prefix string, sc runs.SessionConfig) (*Predictor, error) {
	sess, err := NewSession(ig.Graph, sc)
	if err != nil {
		return nil, err
	}
	if err := ig.Saver.Restore(sess, prefix); err != nil {
		sess.Close()
		return nil, err
	}
	return &Predictor{IG: ig, Sess: sess, size: int64(ig.Spec.InputSize)}, nil
}

// Close releases the session.
func (p *Predictor) Close() error { return p.Sess.Close() }

// Predict returns the class probabilities [n×K] of n images (HWC RGB 0–255
// floats, the network's input size). With labels it also returns the
// cross-entropy of each example.
func (p *Predictor) Predict(images []float32, n int, labels []int32) (probs, losses []float32, err error) {
	x, err := tfops.Float32Tensor(images[:int64(n)*p.size*p.size*3], []int64{int64(n), p.size, p.size, 3})
	if err != nil {
		return nil, nil, err
	}
	feeds := map[tf.Output]*tf.Tensor{p.IG.Images: x}
	fetch := []tf.Output{p.IG.Probs}
	if labels != nil {
		lt, err := tf.NewTensor(labels[:n])
		if err != nil {
			return nil, nil, err
		}
		feeds[p.IG.Labels] = lt
		fetch = append(fetch, p.IG.ExampleLoss)
	}
	out, err := p.Sess.Run(feeds, fetch, nil)
	freeFeeds(feeds)
	if err != nil {
		return nil, nil, fmt.Errorf("running %s: %w", p.IG.Spec.Name, err)
	}
	defer tfops.Free(out...)
	if probs, err = tfops.Float32s(out[0]); err != nil {
		return nil, nil, err
	}
	if labels != nil {
		losses, err = tfops.Float32s(out[1])
	}
	return probs, losses, err
}
