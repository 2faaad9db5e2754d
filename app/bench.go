package app

import (
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/kfash-tf/kfash-tf/app/benchmark"
	"github.com/kfash-tf/kfash-tf/augment"
	"github.com/kfash-tf/kfash-tf/graphs"
	"github.com/kfash-tf/kfash-tf/graphs/runs"
	"github.com/kfash-tf/kfash-tf/models"
)

// 'kfash-tf bench': the flags become a benchmark.Plan (or the arguments of
// benchmark.MatMul and Pipeline); the results go out as JSON or as the text
// of bench_output.go.

func benchCommand() *cli.Command {
	return &cli.Command{
		Name:      "bench",
		Usage:     "measure how fast this machine trains and runs a network (synthetic data)",
		ArgsUsage: "NETWORK | matmul | pipeline --data DIR",
		Description: "Times training steps (the study's optimizer for the network) on one random batch held\n" +
			"in memory, then inference images/s at --infer-batch and the latency of one image\n" +
			"through the inference graph. Warm-up steps come first; then it steps until both\n" +
			"--steps and --min-seconds are reached. 'make bench' compares the figures with Keras\n" +
			"and PyTorch (bench/run.py, BENCHMARKS.md).\n\n" +
			"Examples:\n" +
			"  kfash-tf bench vgg8\n" +
			"  kfash-tf bench resnet34 --batch 128 --measure train --format json\n" +
			"  kfash-tf bench matmul\n" +
			"  kfash-tf bench pipeline --data photos/ --size 150,224",
		Flags: append(benchFlags(), formatFlag("text", "json")),
		Action: func(c *cli.Context) error {
			if c.Args().Len() != 1 {
				return fmt.Errorf("bench needs one network (%s), matmul or pipeline", strings.Join(models.Names(), ", "))
			}
			if err := checkFormat(c.String("format"), "text", "json"); err != nil {
				return err
			}
			plan, err := benchPlanFromFlags(c)
			if err != nil {
				return err
			}
			rep, err := benchmark.Network(plan, c.App.ErrWriter)
			if err != nil {
				return err
			}
			if c.String("format") == "json" {
				return writeJSON(out(c), rep)
			}
			return printBench(out(c), rep)
		},
		Subcommands: []*cli.Command{benchMatMulCommand(), benchPipelineCommand(), benchAllReduceCommand()},
	}
}

func benchFlags() []cli.Flag {
	return []cli.Flag{
		&cli.IntFlag{Name: "batch", Value: 32, Usage: "training batch size"},
		&cli.IntFlag{Name: "infer-batch", Value: 32, Usage: "inference batch size (latency always uses 1 image)"},
		&cli.StringFlag{Name: "measure", Value: "train,infer,latency", Usage: "what to time: any of train, infer, latency"},
		&cli.IntFlag{Name: "warmup", Value: 2, Usage: "untimed steps before each measure"},
		&cli.IntFlag{Name: "steps", Value: 3, Usage: "at least this many timed steps (runs for latency)"},
		&cli.Float64Flag{Name: "min-seconds", Value: 5, Usage: "keep timing until this many seconds have passed"},
		&cli.StringFlag{Name: "optimizer", Usage: "adam, adamw or sgd (default: the study's optimizer for the network)"},
		&cli.Float64Flag{Name: "weight-decay", Value: -1, Usage: "weight decay (default: the study's for the network)"},
		&cli.IntFlag{Name: "intra-op-threads", Value: 0, Usage: "threads inside one TensorFlow op (0: the core count)"},
		&cli.IntFlag{Name: "inter-op-threads", Value: 0, Usage: "TensorFlow ops run in parallel (0: TensorFlow's default)"},
		&cli.BoolFlag{Name: "step-times", Usage: "also list every timed step (json)"},
		&cli.BoolFlag{Name: "xla", Usage: "let XLA's JIT compile the graphs (TF_XLA_FLAGS auto-clustering on the CPU); slower than oneDNN for these networks on the CPU"},
		&cli.StringFlag{Name: "graph-out", Usage: "also write the training graph (GraphDef) to this file and its tensor names to FILE.json, for TensorFlow's profiling tools"},
	}
}

// benchPlanFromFlags checks the flags of 'bench NETWORK'.
func benchPlanFromFlags(c *cli.Context) (benchmark.Plan, error) {
	spec, err := models.Get(c.Args().First())
	if err != nil {
		return benchmark.Plan{}, err
	}
	p := benchmark.Plan{
		Spec: spec, Batch: c.Int("batch"), InferBatch: c.Int("infer-batch"), Warmup: c.Int("warmup"),
		MinSteps: c.Int("steps"), MinTime: time.Duration(c.Float64("min-seconds") * float64(time.Second)),
		Session:   runs.SessionConfig{IntraOpThreads: c.Int("intra-op-threads"), InterOpThreads: c.Int("inter-op-threads"), Device: runs.DeviceCPU},
		StepTimes: c.Bool("step-times"), XLA: c.Bool("xla"),
	}
	if path := c.String("graph-out"); path != "" {
		p.OnGraph = func(tg *graphs.TrainGraph) error {
			if err := benchmark.WriteGraph(path, tg); err != nil {
				return fmt.Errorf("--graph-out %s: %w", path, err)
			}
			return nil
		}
	}
	if p.Measures, err = parseMeasures(c.String("measure")); err != nil {
		return p, err
	}
	if p.Batch < 1 || p.InferBatch < 1 || p.MinSteps < 1 || p.Warmup < 0 || p.MinTime < 0 {
		return p, fmt.Errorf("--batch, --infer-batch and --steps must be at least 1, --warmup and --min-seconds not negative")
	}
	p.Optimizer = runs.OptimizerConfig{Name: spec.Recipe.Optimizer, WeightDecay: spec.Recipe.WeightDecay}
	if o := c.String("optimizer"); o != "" {
		p.Optimizer.Name = o
	}
	if wd := c.Float64("weight-decay"); wd >= 0 {
		p.Optimizer.WeightDecay = wd
	}
	if err := p.Optimizer.Validate(); err != nil {
		return p, err
	}
	return p, p.Session.Validate()
}

// parseMeasures reads a comma-separated list of measures.
func parseMeasures(s string) (map[benchmark.Measure]bool, error) {
	m := map[benchmark.Measure]bool{}
	for _, name := range splitList(s) {
		switch ms := benchmark.Measure(name); ms {
		case benchmark.Train, benchmark.Infer, benchmark.Latency:
			m[ms] = true
		default:
			return nil, fmt.Errorf("unknown --measure %q: use train, infer and/or latency", name)
		}
	}
	if len(m) == 0 {
		return nil, fmt.Errorf("--measure is empty: use train, infer and/or latency")
	}
	return m, nil
}

func benchMatMulCommand() *cli.Command {
	return &cli.Command{
		Name:  "matmul",
		Usage: "the machine's achievable float32 FLOP/s: a large square MatMul through TensorFlow",
		Flags: []cli.Flag{
			&cli.IntFlag{Name: "size", Value: 4096, Usage: "matrix side N (2·N³ FLOPs per product)"},
			&cli.IntFlag{Name: "warmup", Value: 2, Usage: "untimed products first"},
			&cli.IntFlag{Name: "steps", Value: 3, Usage: "at least this many timed products"},
			&cli.Float64Flag{Name: "min-seconds", Value: 5, Usage: "keep timing until this many seconds have passed"},
			&cli.IntFlag{Name: "intra-op-threads", Value: 0, Usage: "threads inside the MatMul (0: the core count)"},
			formatFlag("text", "json"),
		},
		Action: func(c *cli.Context) error {
			if err := checkFormat(c.String("format"), "text", "json"); err != nil {
				return err
			}
			n := c.Int("size")
			if n < 1 || c.Int("steps") < 1 || c.Int("warmup") < 0 {
				return fmt.Errorf("--size and --steps must be at least 1, --warmup not negative")
			}
			sc := runs.SessionConfig{IntraOpThreads: c.Int("intra-op-threads"), Device: runs.DeviceCPU}
			res, err := benchmark.MatMul(n, c.Int("warmup"), c.Int("steps"), time.Duration(c.Float64("min-seconds")*float64(time.Second)), sc)
			if err != nil {
				return err
			}
			if c.String("format") == "json" {
				return writeJSON(out(c), res)
			}
			return printMatMul(out(c), res)
		},
	}
}

func benchPipelineCommand() *cli.Command {
	return &cli.Command{
		Name:  "pipeline",
		Usage: "the data pipeline alone: decode + resize + augment images/s on a dataset's training photos",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "data", Usage: "dataset folder (Train/ of class folders)", Required: true},
			&cli.StringFlag{Name: "size", Value: "150,224,227", Usage: "comma-separated input sizes"},
			&cli.IntFlag{Name: "workers", Value: runtime.NumCPU(), Usage: "image decoding goroutines"},
			&cli.IntFlag{Name: "batch", Value: 32, Usage: "images per batch"},
			&cli.StringFlag{Name: "augment", Value: "online", Usage: "online, double or none"},
			&cli.Float64Flag{Name: "min-seconds", Value: 5, Usage: "time each size for at least this long (after one warm-up batch)"},
			formatFlag("text", "json"),
		},
		Action: func(c *cli.Context) error {
			if err := checkFormat(c.String("format"), "text", "json"); err != nil {
				return err
			}
			var sizes []int
			for _, s := range splitList(c.String("size")) {
				n, err := strconv.Atoi(s)
				if err != nil || n < 1 {
					return fmt.Errorf("--size %q: want positive integers separated by commas", c.String("size"))
				}
				sizes = append(sizes, n)
			}
			ds, err := augment.Open(c.String("data"), augment.OpenOptions{})
			if err != nil {
				return err
			}
			samples, err := ds.Split("train")
			if err != nil {
				return err
			}
			minTime := time.Duration(c.Float64("min-seconds") * float64(time.Second))
			var res []benchmark.PipelineResult
			for _, size := range sizes {
				cfg := augment.LoaderConfig{Size: size, BatchSize: c.Int("batch"), Shuffle: true, Augment: augment.Mode(c.String("augment")),
					Seed: 1, Workers: c.Int("workers")}
				r, err := benchmark.Pipeline(c.Context, samples, cfg, minTime)
				if err != nil {
					return err
				}
				res = append(res, r)
			}
			if c.String("format") == "json" {
				return writeJSON(out(c), res)
			}
			return printPipeline(out(c), res)
		},
	}
}
