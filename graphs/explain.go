package graphs

import (
	"errors"
	"fmt"
	"strings"

	tf "github.com/galeone/tensorflow/tensorflow/go"
	"github.com/galeone/tensorflow/tensorflow/go/op"

	"github.com/kfash-tf/kfash-tf/tfops"
)

// Grad-CAM (Selvaraju et al. 2017) computed in the TensorFlow graph: the
// gradient of one class's logit with respect to a convolutional feature map
// A [N,h,w,C], averaged over h×w into one weight per channel; the map is
// ReLU(Σ_c w_c·A_c), upsampled bilinearly to the input size and normalised
// to [0,1] per image. Everything after the feed is graph ops, so a
// SavedModel carries it as its explain signature (savedmodel.go, read back
// by explain_savedmodel.go).

// gradCAMPrefix names the gradient ops AddGradients adds for Grad-CAM; one
// Grad-CAM per graph.
const gradCAMPrefix = "gradcam_gradients"

// GradCAM is the Grad-CAM subgraph over one feature map.
type GradCAM struct {
	Layer    string    // the layer-table name of the feature map's layer
	Feature  tf.Output // float32 [N,h,w,C]: the explained feature map
	Target   tf.Output // int32 [N] input: the class explained; defaults to the predicted one
	Score    tf.Output // float32 scalar: Σ over the batch of each image's target logit
	Gradient tf.Output // float32 [N,h,w,C]: ∂Score/∂Feature, i.e. each image's own gradient
	Weights  tf.Output // float32 [N,C]: the channel weights (gradient averaged over h×w)
	Raw      tf.Output // float32 [N,h,w]: ReLU(Σ_c w_c·A_c) at the feature map's resolution
	Min, Max tf.Output // float32 [N]: the upsampled map's range before normalising
	Map      tf.Output // float32 [N,S,S]: the upsampled map normalised to [0,1] (0 where flat)
}

// UnknownLayerError is AddGradCAM's error for a layer name that is not a
// row of the network's layer table (`kfash-tf models show` lists them).
type UnknownLayerError struct {
	Network, Layer string
	Known          []string // the layers with a spatial output, in network order
}

// Error names the layer and the last layers that would do.
func (e *UnknownLayerError) Error() string {
	known := e.Known
	if len(known) > 4 {
		known = known[len(known)-4:]
	}
	return fmt.Sprintf("network %s has no layer %q with a spatial feature map: 'kfash-tf models show %s' lists its layers (the last ones: %s)",
		e.Network, e.Layer, e.Network, strings.Join(known, ", "))
}

// ErrNoExplain is the error of explaining a model that cannot: a SavedModel
// exported without the explain signature.
var ErrNoExplain = errors.New("explain needs a run folder or a SavedModel exported with the explain signature")

// AddGradCAM adds Grad-CAM over the layer called layer ("" for the
// network's default, Spec.CAMLayer) to an inference graph. The layer's
// output is taken after the ReLU or residual sum that directly follows it,
// as the network uses it.
func AddGradCAM(ig *InferenceGraph, layer string) (*GradCAM, error) {
	if ig.net == nil {
		return nil, errors.New("inference graph has no network build to explain")
	}
	if layer == "" {
		layer = ig.Spec.CAMLayer
	}
	out, ok := ig.net.LayerOutput(layer)
	if !ok || rank(out) != 4 {
		return nil, &UnknownLayerError{Network: ig.Spec.Name, Layer: layer, Known: spatialLayers(ig.net)}
	}
	s := op.NewScopeWithGraph(ig.Graph).SubScope("explain")
	cam, err := BuildGradCAM(ig.Graph, s, FeatureMapAfter(out), ig.Logits, int64(ig.Spec.InputSize))
	if err != nil {
		return nil, fmt.Errorf("grad-cam on %s/%s: %w", ig.Spec.Name, layer, err)
	}
	cam.Layer = layer
	return cam, nil
}

// FeatureMapAfter follows x through the elementwise ops a network applies
// to a layer's output before anything else reads it (bias, ReLU, the
// residual sum): Grad-CAM explains the map the next layer sees, not the
// pre-activation.
func FeatureMapAfter(x tf.Output) tf.Output {
	for {
		cs := x.Consumers()
		if len(cs) != 1 {
			return x
		}
		switch cs[0].Op.Type() {
		case "Relu", "Relu6", "BiasAdd", "AddV2", "Add":
			x = cs[0].Op.Output(0)
		default:
			return x
		}
	}
}

// BuildGradCAM adds Grad-CAM of logits [N,K] with respect to feature
// [N,h,w,C] (a tensor logits depends on) under scope s, upsampled to
// size×size. It is the whole computation, used by AddGradCAM and by tests
// on small networks.
func BuildGradCAM(g *tf.Graph, s *op.Scope, feature, logits tf.Output, size int64) (*GradCAM, error) {
	if err := s.Err(); err != nil {
		return nil, err
	}
	if rank(feature) != 4 {
		return nil, fmt.Errorf("feature map must be [N,h,w,C], got %v", feature.Shape())
	}
	ls, err := logits.Shape().ToSlice()
	if err != nil || len(ls) != 2 || ls[1] < 1 {
		return nil, fmt.Errorf("logits must be [N,K] with K known, got %v", logits.Shape())
	}
	c := &GradCAM{Feature: feature}
	predicted := op.Cast(s.SubScope("predicted"), op.ArgMax(s.SubScope("argmax"), logits, op.Const(s.SubScope("class_axis"), int32(1))), tf.Int32)
	c.Target = op.PlaceholderWithDefault(s.SubScope("target"), predicted, tf.MakeShape(-1))
	oneHot := op.OneHot(s.SubScope("one_hot"), c.Target, op.Const(s.SubScope("depth"), int32(ls[1])),
		op.Const(s.SubScope("on"), float32(1)), op.Const(s.SubScope("off"), float32(0)))
	// Images are independent in an inference graph (batch norm uses its
	// moving statistics), so the gradient of the batch's sum is each
	// image's own gradient.
	c.Score = op.Sum(s.SubScope("score"), op.Mul(s.SubScope("target_logits"), logits, oneHot), op.Const(s.SubScope("score_axes"), []int32{0, 1}))
	if err := s.Err(); err != nil {
		return nil, err
	}
	grads, err := g.AddGradients(gradCAMPrefix, []tf.Output{c.Score}, []tf.Output{feature}, nil)
	if err != nil {
		return nil, fmt.Errorf("gradients: %w", err)
	}
	c.Gradient = grads[0]
	spatial := op.Const(s.SubScope("spatial_axes"), []int32{1, 2})
	w := op.Mean(s.SubScope("weights"), c.Gradient, spatial, op.MeanKeepDims(true)) // [N,1,1,C]
	c.Weights = op.Squeeze(s.SubScope("weights_nc"), w, op.SqueezeAxis([]int64{1, 2}))
	sum := op.Sum(s.SubScope("weighted_sum"), op.Mul(s.SubScope("weighted"), feature, w), op.Const(s.SubScope("channel_axis"), int32(3)), op.SumKeepDims(true))
	raw := op.Relu(s.SubScope("relu"), sum) // [N,h,w,1]
	c.Raw = op.Squeeze(s.SubScope("raw"), raw, op.SqueezeAxis([]int64{3}))
	up := op.ResizeBilinear(s.SubScope("upsample"), raw, op.Const(s.SubScope("size"), []int32{int32(size), int32(size)}),
		op.ResizeBilinearHalfPixelCenters(true))
	up = op.Squeeze(s.SubScope("upsampled"), up, op.SqueezeAxis([]int64{3})) // [N,S,S]
	c.Min = op.Min(s.SubScope("min"), up, spatial)
	c.Max = op.Max(s.SubScope("max"), up, spatial)
	// A flat map (no positive evidence anywhere) normalises to 0, not NaN.
	span := op.Maximum(s.SubScope("span"), op.Sub(s.SubScope("range"), c.Max, c.Min), op.Const(s.SubScope("tiny"), float32(1e-12)))
	perImage := op.Const(s.SubScope("per_image"), []int64{-1, 1, 1})
	c.Map = op.Div(s.SubScope("map"),
		op.Sub(s.SubScope("shifted"), up, op.Reshape(s.SubScope("min_b"), c.Min, perImage)),
		op.Reshape(s.SubScope("span_b"), span, perImage))
	if err := s.Err(); err != nil {
		return nil, err
	}
	return c, nil
}

// rank is x's static rank, or -1 when unknown.
func rank(x tf.Output) int {
	if x.Op == nil {
		return -1
	}
	return x.Shape().NumDimensions()
}

// spatialLayers lists the layers of a build whose output is a 4-D map
// larger than 1×1 (the layers Grad-CAM can explain), in network order.
func spatialLayers(n *tfops.Net) []string {
	var names []string
	for _, l := range n.Layers() {
		if len(l.Shape) == 3 && l.Shape[0] > 1 && l.Shape[1] > 1 {
			names = append(names, l.Name)
		}
	}
	return names
}
