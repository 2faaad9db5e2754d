package benchmark

import (
	"fmt"
	"runtime"
	"time"

	tf "github.com/galeone/tensorflow/tensorflow/go"
	"github.com/galeone/tensorflow/tensorflow/go/op"

	"github.com/kfash-tf/kfash-tf/graphs"
	"github.com/kfash-tf/kfash-tf/graphs/runs"
)

// MatMulResult is the result of MatMul: the machine's achievable float32
// FLOP/s through TensorFlow.
type MatMulResult struct {
	System     string  `json:"system"`
	Size       int     `json:"size"`
	Runs       int     `json:"runs"`
	Seconds    float64 `json:"seconds"`
	GFLOPS     float64 `json:"gflops_per_second"`
	MedianMS   float64 `json:"median_ms"`
	TensorFlow string  `json:"tensorflow_version"`
	Threads    int     `json:"cores"`
}

// MatMul times n×n · n×n products of two random matrices held in
// variables, so nothing is copied in or out per product: warmup untimed
// products, then at least minSteps and for at least minTime.
func MatMul(n, warmup, minSteps int, minTime time.Duration, sc runs.SessionConfig) (*MatMulResult, error) {
	s := op.NewScope()
	shape := op.Const(s.SubScope("shape"), []int64{int64(n), int64(n)})
	var reads []tf.Output
	var inits []*tf.Operation
	for i, name := range []string{"a", "b"} {
		vs := s.SubScope(name)
		h := op.VarHandleOp(vs, tf.Float, tf.MakeShape(int64(n), int64(n)), op.VarHandleOpSharedName(name))
		rnd := op.RandomUniform(vs, shape, tf.Float, op.RandomUniformSeed(1), op.RandomUniformSeed2(int64(i+1)))
		inits = append(inits, op.AssignVariableOp(vs, h, rnd))
		reads = append(reads, op.ReadVariableOp(vs, h, tf.Float))
	}
	product := op.MatMul(s.SubScope("product"), reads[0], reads[1])
	g, err := s.Finalize()
	if err != nil {
		return nil, fmt.Errorf("building the MatMul graph: %w", err)
	}
	sess, err := graphs.NewSession(g, sc)
	if err != nil {
		return nil, err
	}
	defer sess.Close()
	if _, err := sess.Run(nil, nil, inits); err != nil {
		return nil, fmt.Errorf("initialising the matrices: %w", err)
	}
	times, err := timeSteps(warmup, minSteps, minTime, func() error {
		_, err := sess.Run(nil, nil, []*tf.Operation{product.Op})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("MatMul: %w", err)
	}
	sum := times.summary(1, warmup, false)
	flops := 2 * float64(n) * float64(n) * float64(n)
	return &MatMulResult{System: "kfash-tf", Size: n, Runs: sum.Steps, Seconds: sum.Seconds, GFLOPS: flops * float64(sum.Steps) / sum.Seconds / 1e9,
		MedianMS: sum.MedianMS, TensorFlow: tf.Version(), Threads: runtime.NumCPU()}, nil
}
