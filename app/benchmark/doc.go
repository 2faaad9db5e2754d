// Package benchmark measures how fast this machine runs kfash-tf's work, on
// synthetic data so that only the computation is timed: a network's
// training steps, its inference throughput and the latency of one image
// (Network), TensorFlow's achievable FLOP/s on a large MatMul (MatMul) and
// the data pipeline alone (Pipeline). WriteGraph saves the training graph
// for TensorFlow's profiling tools.
//
// Warm-up steps come first, untimed; then a step is repeated until both a
// minimum count and a minimum time are reached. The results are plain data
// whose JSON layout bench/run.py reads and the Keras and PyTorch peers
// print too; `kfash-tf bench` turns flags into a Plan and prints the
// results.
package benchmark
