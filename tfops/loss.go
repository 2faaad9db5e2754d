package tfops

import (
	tf "github.com/galeone/tensorflow/tensorflow/go"
	"github.com/galeone/tensorflow/tensorflow/go/op"
)

// SoftmaxCrossEntropy returns the per-example cross-entropy [N] between
// logits [N,K] and integer labels [N], with optional label smoothing ε (the
// target is (1-ε)·onehot + ε/K).
//
// It uses OneHot + SoftmaxCrossEntropyWithLogits because the sparse variant
// has no registered C++ gradient; smoothing is then just the one-hot values.
func SoftmaxCrossEntropy(s *op.Scope, logits, labels tf.Output, classes int64, smoothing float32) tf.Output {
	s = s.SubScope("xent")
	off := smoothing / float32(classes)
	on := 1 - smoothing + off
	target := op.OneHot(s, labels, op.Const(s.SubScope("depth"), int32(classes)),
		op.Const(s.SubScope("on"), on), op.Const(s.SubScope("off"), off))
	loss, _ := op.SoftmaxCrossEntropyWithLogits(s, logits, target)
	return loss
}
