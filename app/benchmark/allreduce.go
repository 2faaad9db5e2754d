package benchmark

import (
	"fmt"
	"time"

	tf "github.com/galeone/tensorflow/tensorflow/go"
	"github.com/galeone/tensorflow/tensorflow/go/op"

	"github.com/kfash-tf/kfash-tf/graphs"
	"github.com/kfash-tf/kfash-tf/graphs/runs"
	"github.com/kfash-tf/kfash-tf/models"
	"github.com/kfash-tf/kfash-tf/tfops"
)

// AllReduceResult is the time one task of a cluster took to average one
// network's gradients with the other tasks, as a training step does.
type AllReduceResult struct {
	Network     string    `json:"network"`
	Tasks       int       `json:"tasks"`
	Floats      int64     `json:"floats"` // float32 gradient elements per step
	Tensors     int       `json:"tensors"`
	Collectives int       `json:"collectives"` // all-reduce ops per step
	Fused       bool      `json:"fused"`       // packed into flat tensors, as training does
	MedianMS    float64   `json:"median_ms"`
	RunsMS      []float64 `json:"runs_ms"`
}

// GradientSizes returns the element counts of spec's trainable variables
// (its gradients) at the study's class count, in the order they are
// created, which is the order training packs them in.
func GradientSizes(spec models.Spec) ([]int64, error) {
	s := op.NewScope()
	store := tfops.NewStore(s.SubScope("vars"), 0)
	size := int64(spec.InputSize)
	x := op.Placeholder(s.SubScope("images"), tf.Float, op.PlaceholderShape(tf.MakeShape(-1, size, size, 3)))
	spec.Build(tfops.NewNet(s.SubScope("infer"), store, tfops.Inference), x, spec.Config(len(classes)))
	if err := s.Err(); err != nil {
		return nil, fmt.Errorf("building %s: %w", spec.Name, err)
	}
	var sizes []int64
	for _, v := range store.Trainable() {
		sizes = append(sizes, v.Size())
	}
	return sizes, nil
}

// AllReduce times, on r's cluster, the mean all-reduce of each network's
// gradients, n timed runs after an untimed one, and passes each result to
// each. Every task of the cluster must call it with the same arguments:
// the collectives pair up in order.
func AllReduce(r *graphs.Replica, specs []models.Spec, fused bool, n int, sc runs.SessionConfig, each func(AllReduceResult) error) error {
	for _, spec := range specs {
		sizes, err := GradientSizes(spec)
		if err != nil {
			return err
		}
		t, err := r.AllReduceBench(sizes, fused, n, sc)
		if err != nil {
			return fmt.Errorf("all-reduce of %s's gradients: %w", spec.Name, err)
		}
		res := AllReduceResult{
			Network: spec.Name, Tasks: r.Cluster.Size(), Floats: t.Floats, Tensors: len(sizes),
			Collectives: t.Collectives, Fused: fused, MedianMS: ms(t.Median()),
		}
		for _, d := range t.Runs {
			res.RunsMS = append(res.RunsMS, ms(d))
		}
		if err := each(res); err != nil {
			return err
		}
	}
	return nil
}

// ms is d in milliseconds.
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
