package benchmark

import (
	"context"
	"fmt"
	"time"

	"github.com/kfash-tf/kfash-tf/augment"
)

// PipelineResult is the data pipeline's throughput at one input size.
type PipelineResult struct {
	Size            int     `json:"size"`
	Workers         int     `json:"workers"`
	Batch           int     `json:"batch"`
	Augment         string  `json:"augment"`
	Images          int     `json:"images"`
	Seconds         float64 `json:"seconds"`
	ImagesPerSecond float64 `json:"images_per_second"`
}

// Pipeline pulls batches of samples from a fresh (uncached) loader for at
// least minTime after one warm-up batch, epoch after epoch: decoding,
// resizing and augmentation without a network.
func Pipeline(ctx context.Context, samples []augment.Sample, cfg augment.LoaderConfig, minTime time.Duration) (PipelineResult, error) {
	l, err := augment.NewLoader(samples, cfg)
	if err != nil {
		return PipelineResult{}, err
	}
	cfg = l.Config()
	res := PipelineResult{Size: cfg.Size, Workers: cfg.Workers, Batch: cfg.BatchSize, Augment: string(cfg.Augment)}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var start time.Time
	warm := false
	for epoch := 0; ; epoch++ {
		got := 0
		for b := range l.Epoch(ctx, epoch) {
			got += b.N
			if !warm {
				warm, start = true, time.Now()
			} else {
				res.Images += b.N
			}
			b.Release()
			if res.Images > 0 && time.Since(start) >= minTime {
				// Returning cancels ctx, which stops the epoch's goroutines.
				res.Seconds = time.Since(start).Seconds()
				res.ImagesPerSecond = float64(res.Images) / res.Seconds
				return res, nil
			}
		}
		if err := ctx.Err(); err != nil {
			return res, err
		}
		if got == 0 {
			return res, fmt.Errorf("no readable image in the training split (%d files)", len(samples))
		}
	}
}
