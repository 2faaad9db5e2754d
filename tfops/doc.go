// Package tfops holds the op-level layers kfash-tf builds its networks from:
// convolution, dense, pooling, batch normalisation, dropout, activations and
// the loss, written over the generated TensorFlow op wrappers.
//
// A network is written against a *Net: a name scope, a shared variable
// Store, and a Mode. The same builder is called once per mode in one graph
// (training and inference paths read the same resource variables), so the
// inference path never depends on a training flag that must be fed.
package tfops
