package app

import (
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/kfash-tf/kfash-tf/app/benchmark"
)

// What 'kfash-tf bench' prints with --format text (the default); JSON is
// the results themselves, and --graph-out is benchmark.WriteGraph.

// printBench writes a report as a short table.
func printBench(w io.Writer, r *benchmark.Report) error {
	fmt.Fprintf(w, "%s on %d cores, TensorFlow %s: %s trainable parameters, %.3f GFLOPs/image forward\n",
		r.Network, r.Threads, r.TensorFlow, commas(r.TrainableParams), float64(r.ForwardFLOPs)/1e9)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "measure\tbatch\tsteps\timages/s\tmedian ms\tp90 ms\t")
	row := func(name string, t *benchmark.Timing) {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.1f\t%.1f\t%.1f\t\n", name, t.Batch, t.Steps, t.ImagesPerSecond, t.MedianMS, t.P90MS)
	}
	if r.Train != nil {
		row("train ("+r.Train.Optimizer+")", &r.Train.Timing)
	}
	if r.Infer != nil {
		row("inference", r.Infer)
	}
	if r.Latency != nil {
		row("latency", r.Latency)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if r.Train != nil {
		gflops := 3 * float64(r.ForwardFLOPs) * r.Train.ImagesPerSecond / 1e9
		fmt.Fprintf(w, "training: %.1f GFLOP/s (3 × forward FLOPs per image); peak RSS %.0f MiB\n",
			gflops, float64(r.Train.PeakRSSBytes)/(1<<20))
	}
	return nil
}

// printMatMul writes the result of 'bench matmul' as one line.
func printMatMul(w io.Writer, r *benchmark.MatMulResult) error {
	_, err := fmt.Fprintf(w, "MatMul %d×%d float32: %.1f GFLOP/s (median %.1f ms over %d products, %d cores)\n",
		r.Size, r.Size, r.GFLOPS, r.MedianMS, r.Runs, r.Threads)
	return err
}

// printPipeline writes the results of 'bench pipeline' as a table, one
// input size a row.
func printPipeline(w io.Writer, res []benchmark.PipelineResult) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "size\tworkers\timages\tseconds\timages/s\t")
	for _, r := range res {
		fmt.Fprintf(tw, "%d\t%d\t%d\t%.1f\t%.1f\t\n", r.Size, r.Workers, r.Images, r.Seconds, r.ImagesPerSecond)
	}
	return tw.Flush()
}
