package app

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	tf "github.com/galeone/tensorflow/tensorflow/go"
	"github.com/galeone/tensorflow/tensorflow/go/op"
	"github.com/urfave/cli/v2"

	"github.com/kfash-tf/kfash-tf/augment"
	"github.com/kfash-tf/kfash-tf/graphs"
	"github.com/kfash-tf/kfash-tf/graphs/runs"
	"github.com/kfash-tf/kfash-tf/internal/atomicfile"
	"github.com/kfash-tf/kfash-tf/models"
)

// Measures 'kfash-tf bench NETWORK' can take (--measure).
const (
	measureTrain   = "train"   // training images/s at --batch
	measureInfer   = "infer"   // inference images/s at --infer-batch
	measureLatency = "latency" // one image through the inference graph
)

// benchClasses are the output classes of the benchmarked networks: the
// study's three.
var benchClasses = []string{"resort", "retro", "sporty"}

// BenchTiming is how long a run of identical steps took.
type BenchTiming struct {
	Batch           int       `json:"batch"`
	WarmupSteps     int       `json:"warmup_steps"`
	Steps           int       `json:"steps"`
	Seconds         float64   `json:"seconds"`
	ImagesPerSecond float64   `json:"images_per_second"`
	MedianMS        float64   `json:"median_ms"` // median step time
	P90MS           float64   `json:"p90_ms"`
	StepMS          []float64 `json:"step_ms,omitempty"`
}

// BenchTrain is a training-throughput measurement.
type BenchTrain struct {
	BenchTiming
	Optimizer    string  `json:"optimizer"`
	WeightDecay  float64 `json:"weight_decay"`
	PeakRSSBytes int64   `json:"peak_rss_bytes"` // the process's peak RSS when training ended
	Loss         float64 `json:"last_loss"`      // proof that the steps ran
}

// BenchReport is the result of 'kfash-tf bench NETWORK'. bench/run.py reads
// its JSON; the Keras and PyTorch peers print the same layout.
type BenchReport struct {
	System          string             `json:"system"`
	Network         string             `json:"network"`
	InputSize       int                `json:"input_size"`
	TrainableParams int64              `json:"trainable_params"`
	ForwardFLOPs    int64              `json:"forward_flops"`
	TensorFlow      string             `json:"tensorflow_version"`
	GoVersion       string             `json:"go_version"`
	Threads         int                `json:"cores"`
	Session         runs.SessionConfig `json:"session"`
	XLA             bool               `json:"xla_jit"`
	Train           *BenchTrain        `json:"train,omitempty"`
	Infer           *BenchTiming       `json:"infer,omitempty"`
	Latency         *BenchTiming       `json:"latency,omitempty"`
	PeakRSSBytes    int64              `json:"peak_rss_bytes"` // at the end of the whole run
}

// benchPlan is what to run, from the flags.
type benchPlan struct {
	spec       models.Spec
	measures   map[string]bool
	batch      int
	inferBatch int
	warmup     int
	minSteps   int
	minTime    time.Duration
	optimizer  runs.OptimizerConfig
	session    runs.SessionConfig
	stepTimes  bool
	graphOut   string
	xla        bool
}

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
			if plan.xla {
				if err := enableXLA(); err != nil {
					return err
				}
			}
			rep, err := runBench(plan, c.App.ErrWriter)
			if err != nil {
				return err
			}
			if c.String("format") == "json" {
				return writeJSON(out(c), rep)
			}
			return printBench(out(c), rep)
		},
		Subcommands: []*cli.Command{benchMatMulCommand(), benchPipelineCommand()},
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
func benchPlanFromFlags(c *cli.Context) (benchPlan, error) {
	spec, err := models.Get(c.Args().First())
	if err != nil {
		return benchPlan{}, err
	}
	p := benchPlan{
		spec: spec, batch: c.Int("batch"), inferBatch: c.Int("infer-batch"), warmup: c.Int("warmup"),
		minSteps: c.Int("steps"), minTime: time.Duration(c.Float64("min-seconds") * float64(time.Second)),
		session:   runs.SessionConfig{IntraOpThreads: c.Int("intra-op-threads"), InterOpThreads: c.Int("inter-op-threads"), Device: runs.DeviceCPU},
		stepTimes: c.Bool("step-times"), graphOut: c.String("graph-out"), xla: c.Bool("xla"),
	}
	if p.measures, err = parseMeasures(c.String("measure")); err != nil {
		return p, err
	}
	if p.batch < 1 || p.inferBatch < 1 || p.minSteps < 1 || p.warmup < 0 || p.minTime < 0 {
		return p, fmt.Errorf("--batch, --infer-batch and --steps must be at least 1, --warmup and --min-seconds not negative")
	}
	p.optimizer = runs.OptimizerConfig{Name: spec.Recipe.Optimizer, WeightDecay: spec.Recipe.WeightDecay}
	if o := c.String("optimizer"); o != "" {
		p.optimizer.Name = o
	}
	if wd := c.Float64("weight-decay"); wd >= 0 {
		p.optimizer.WeightDecay = wd
	}
	if err := p.optimizer.Validate(); err != nil {
		return p, err
	}
	return p, p.session.Validate()
}

// parseMeasures reads a comma-separated list of measures.
func parseMeasures(s string) (map[string]bool, error) {
	m := map[string]bool{}
	for _, name := range splitList(s) {
		switch name {
		case measureTrain, measureInfer, measureLatency:
			m[name] = true
		default:
			return nil, fmt.Errorf("unknown --measure %q: use train, infer and/or latency", name)
		}
	}
	if len(m) == 0 {
		return nil, fmt.Errorf("--measure is empty: use train, infer and/or latency")
	}
	return m, nil
}

// runBench builds the network and times what plan asks for; progress goes
// to w.
func runBench(p benchPlan, w io.Writer) (*BenchReport, error) {
	sum, err := models.Summarize(p.spec, p.spec.Config(len(benchClasses)))
	if err != nil {
		return nil, err
	}
	rep := &BenchReport{
		System: "kfash-tf", Network: p.spec.Name, InputSize: p.spec.InputSize, TrainableParams: sum.TrainableParams,
		ForwardFLOPs: sum.ForwardFLOPs, TensorFlow: tf.Version(), GoVersion: runtime.Version(), Threads: runtime.NumCPU(),
		Session: p.session, XLA: p.xla,
	}
	pred, err := benchTrainThenRestore(p, rep, w)
	if err != nil {
		return nil, err
	}
	if pred != nil {
		defer pred.Close()
		if p.measures[measureInfer] {
			fmt.Fprintf(w, "bench %s: inference at batch %d ...\n", p.spec.Name, p.inferBatch)
			if rep.Infer, err = benchPredict(p, pred, p.inferBatch); err != nil {
				return nil, err
			}
		}
		if p.measures[measureLatency] {
			fmt.Fprintf(w, "bench %s: latency of one image ...\n", p.spec.Name)
			if rep.Latency, err = benchPredict(p, pred, 1); err != nil {
				return nil, err
			}
		}
	}
	rep.PeakRSSBytes = peakRSS()
	return rep, nil
}

// benchTrainThenRestore times training if the plan asks for it and, if it
// asks for inference, returns a predictor restored from the trainer's
// weights (trained for a few steps, or initial: speed does not depend on
// them). The training session is closed before the predictor is used: the
// predictor then runs alone, as in 'kfash-tf predict' and 'serve'.
func benchTrainThenRestore(p benchPlan, rep *BenchReport, w io.Writer) (*graphs.Predictor, error) {
	tg, trainer, err := newBenchTrainer(p)
	if err != nil {
		return nil, err
	}
	defer trainer.Close()
	if p.graphOut != "" {
		if err := writeBenchGraph(p.graphOut, tg); err != nil {
			return nil, fmt.Errorf("--graph-out %s: %w", p.graphOut, err)
		}
	}
	if p.measures[measureTrain] {
		fmt.Fprintf(w, "bench %s: training at batch %d ...\n", p.spec.Name, p.batch)
		if rep.Train, err = benchTrain(p, trainer); err != nil {
			return nil, err
		}
	}
	if !p.measures[measureInfer] && !p.measures[measureLatency] {
		return nil, nil
	}
	return newBenchPredictor(p, tg, trainer)
}

// newBenchTrainer builds the network's training graph with the plan's
// optimizer and initialises it.
func newBenchTrainer(p benchPlan) (*graphs.TrainGraph, *graphs.Trainer, error) {
	tg, err := graphs.BuildTrainGraph(graphs.ModelConfig{
		Network: p.spec, Net: p.spec.Config(len(benchClasses)), Std: [3]float32{1, 1, 1}, Seed: 1, Optimizer: p.optimizer,
	})
	if err != nil {
		return nil, nil, err
	}
	trainer, err := graphs.NewTrainer(tg, p.spec.InputSize, p.session)
	if err != nil {
		return nil, nil, err
	}
	if err := trainer.Initialize(); err != nil {
		trainer.Close()
		return nil, nil, err
	}
	return tg, trainer, nil
}

// enableXLA turns on XLA auto-clustering for the sessions this process
// opens. TensorFlow reads TF_XLA_FLAGS once, when the first graph is
// optimised, so this must run before any session exists; on the CPU,
// clustering also needs --tf_xla_cpu_global_jit.
func enableXLA() error {
	flags := strings.TrimSpace(os.Getenv("TF_XLA_FLAGS") + " --tf_xla_auto_jit=2 --tf_xla_cpu_global_jit")
	return os.Setenv("TF_XLA_FLAGS", flags)
}

// writeBenchGraph writes tg's GraphDef to path and the names a profiler
// needs to run a training step to path.json, each atomically.
func writeBenchGraph(path string, tg *graphs.TrainGraph) error {
	var def bytes.Buffer
	if _, err := tg.Graph.WriteTo(&def); err != nil {
		return fmt.Errorf("serialising the graph for %s: %w", path, err)
	}
	if err := atomicfile.WriteFile(path, def.Bytes()); err != nil {
		return err
	}
	var inits []string
	for _, o := range tg.Store.InitOps() {
		inits = append(inits, o.Name())
	}
	name := func(o tf.Output) string { return fmt.Sprintf("%s:%d", o.Op.Name(), o.Index) }
	names := map[string]interface{}{
		"images": name(tg.Images), "labels": name(tg.Labels), "lr": name(tg.LR), "rng_step": name(tg.RNGStep),
		"loss": name(tg.Loss), "correct": name(tg.Correct), "step": tg.Step.Name(), "init": inits,
		"logits": name(tg.Logits), "probs": name(tg.Probs),
	}
	var js bytes.Buffer
	if err := writeJSON(&js, names); err != nil {
		return err
	}
	return atomicfile.WriteFile(path+".json", js.Bytes())
}

// syntheticBatch is n random images (0–255) with labels cycling through the
// classes: what the peers are fed too.
func syntheticBatch(n, size int, seed int64) *augment.Batch {
	rng := rand.New(rand.NewSource(seed))
	b := &augment.Batch{Images: make([]float32, n*size*size*3), Labels: make([]int32, n), N: n}
	for i := range b.Images {
		b.Images[i] = rng.Float32() * 255
	}
	for i := range b.Labels {
		b.Labels[i] = int32(i % len(benchClasses))
	}
	return b
}

// benchTrain times training steps on one batch held in memory.
func benchTrain(p benchPlan, t *graphs.Trainer) (*BenchTrain, error) {
	b := syntheticBatch(p.batch, p.spec.InputSize, 1)
	res := &BenchTrain{Optimizer: p.optimizer.Name, WeightDecay: p.optimizer.WeightDecay}
	step := int64(0)
	timing, err := timeSteps(p.warmup, p.minSteps, p.minTime, func() error {
		step++
		loss, _, err := t.TrainBatch(b, 1e-4, step)
		res.Loss = loss
		return err
	})
	if err != nil {
		return nil, err
	}
	res.BenchTiming = timing.summary(p.batch, p.warmup, p.stepTimes)
	res.PeakRSSBytes = peakRSS()
	return res, nil
}

// newBenchPredictor hands the trainer's weights to an inference graph
// through a checkpoint, as predict and serve get them.
func newBenchPredictor(p benchPlan, tg *graphs.TrainGraph, t *graphs.Trainer) (*graphs.Predictor, error) {
	dir, err := os.MkdirTemp("", "kfash-tf-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir) // restored: the files are no longer needed
	prefix := filepath.Join(dir, "weights")
	if err := tg.Saver.Save(t.Sess, prefix); err != nil {
		return nil, err
	}
	ig, err := graphs.BuildInferenceGraph(runs.Config{
		Network: p.spec.Name, InputSize: p.spec.InputSize, Classes: benchClasses, Std: [3]float32{1, 1, 1},
		Dropout: p.spec.Recipe.Dropout, Seed: 1,
	})
	if err != nil {
		return nil, err
	}
	return graphs.NewPredictor(ig, prefix, p.session)
}

// benchPredict times Predict on n images.
func benchPredict(p benchPlan, pred *graphs.Predictor, n int) (*BenchTiming, error) {
	b := syntheticBatch(n, p.spec.InputSize, 2)
	timing, err := timeSteps(p.warmup, p.minSteps, p.minTime, func() error {
		_, _, err := pred.Predict(b.Images, n, nil)
		return err
	})
	if err != nil {
		return nil, err
	}
	s := timing.summary(n, p.warmup, p.stepTimes)
	return &s, nil
}

// stepTimes are the durations of timed steps.
type stepTimes []time.Duration

// timeSteps runs step warmup times untimed, then at least minSteps times
// and until minTime has passed, and returns the timed durations.
func timeSteps(warmup, minSteps int, minTime time.Duration, step func() error) (stepTimes, error) {
	for i := 0; i < warmup; i++ {
		if err := step(); err != nil {
			return nil, err
		}
	}
	var times stepTimes
	var total time.Duration
	for len(times) < minSteps || total < minTime {
		start := time.Now()
		if err := step(); err != nil {
			return nil, err
		}
		d := time.Since(start)
		times = append(times, d)
		total += d
	}
	return times, nil
}

// summary turns step durations of batch images each into rates and
// percentiles.
func (st stepTimes) summary(batch, warmup int, keep bool) BenchTiming {
	var total time.Duration
	ms := make([]float64, len(st))
	for i, d := range st {
		total += d
		ms[i] = float64(d) / float64(time.Millisecond)
	}
	t := BenchTiming{Batch: batch, WarmupSteps: warmup, Steps: len(st), Seconds: total.Seconds()}
	if total > 0 {
		t.ImagesPerSecond = float64(batch*len(st)) / total.Seconds()
	}
	sorted := append([]float64(nil), ms...)
	sort.Float64s(sorted)
	t.MedianMS, t.P90MS = percentile(sorted, 0.5), percentile(sorted, 0.9)
	if keep {
		t.StepMS = ms
	}
	return t
}

// percentile returns the q-quantile of sorted values (linear interpolation).
func percentile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	pos := q * float64(len(sorted)-1)
	i := int(pos)
	if i+1 >= len(sorted) {
		return sorted[len(sorted)-1]
	}
	return sorted[i] + (pos-float64(i))*(sorted[i+1]-sorted[i])
}

// peakRSS returns the process's peak resident set size (VmHWM) in bytes, or
// 0 where /proc is not available.
func peakRSS() int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 3 && fields[0] == "VmHWM:" && fields[2] == "kB" {
			kb, err := strconv.ParseInt(fields[1], 10, 64)
			if err != nil {
				return 0
			}
			return kb << 10
		}
	}
	return 0
}

// printBench writes a report as a short table.
func printBench(w io.Writer, r *BenchReport) error {
	fmt.Fprintf(w, "%s on %d cores, TensorFlow %s: %s trainable parameters, %.3f GFLOPs/image forward\n",
		r.Network, r.Threads, r.TensorFlow, commas(r.TrainableParams), float64(r.ForwardFLOPs)/1e9)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "measure\tbatch\tsteps\timages/s\tmedian ms\tp90 ms\t")
	row := func(name string, t *BenchTiming) {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.1f\t%.1f\t%.1f\t\n", name, t.Batch, t.Steps, t.ImagesPerSecond, t.MedianMS, t.P90MS)
	}
	if r.Train != nil {
		row("train ("+r.Train.Optimizer+")", &r.Train.BenchTiming)
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

// BenchMatMul is the result of 'kfash-tf bench matmul'.
type BenchMatMul struct {
	System     string  `json:"system"`
	Size       int     `json:"size"`
	Runs       int     `json:"runs"`
	Seconds    float64 `json:"seconds"`
	GFLOPS     float64 `json:"gflops_per_second"`
	MedianMS   float64 `json:"median_ms"`
	TensorFlow string  `json:"tensorflow_version"`
	Threads    int     `json:"cores"`
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
			res, err := benchMatMul(n, c.Int("warmup"), c.Int("steps"), time.Duration(c.Float64("min-seconds")*float64(time.Second)), sc)
			if err != nil {
				return err
			}
			if c.String("format") == "json" {
				return writeJSON(out(c), res)
			}
			_, err = fmt.Fprintf(out(c), "MatMul %d×%d float32: %.1f GFLOP/s (median %.1f ms over %d products, %d cores)\n",
				n, n, res.GFLOPS, res.MedianMS, res.Runs, res.Threads)
			return err
		},
	}
}

// benchMatMul times n×n · n×n products of two random matrices held in
// variables, so nothing is copied in or out per product.
func benchMatMul(n, warmup, minSteps int, minTime time.Duration, sc runs.SessionConfig) (*BenchMatMul, error) {
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
	return &BenchMatMul{System: "kfash-tf", Size: n, Runs: sum.Steps, Seconds: sum.Seconds, GFLOPS: flops * float64(sum.Steps) / sum.Seconds / 1e9,
		MedianMS: sum.MedianMS, TensorFlow: tf.Version(), Threads: runtime.NumCPU()}, nil
}

// BenchPipeline is the data pipeline's throughput at one input size.
type BenchPipeline struct {
	Size            int     `json:"size"`
	Workers         int     `json:"workers"`
	Batch           int     `json:"batch"`
	Augment         string  `json:"augment"`
	Images          int     `json:"images"`
	Seconds         float64 `json:"seconds"`
	ImagesPerSecond float64 `json:"images_per_second"`
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
			var res []BenchPipeline
			for _, size := range sizes {
				cfg := augment.LoaderConfig{Size: size, BatchSize: c.Int("batch"), Shuffle: true, Augment: augment.Mode(c.String("augment")),
					Seed: 1, Workers: c.Int("workers")}
				r, err := benchPipeline(c.Context, samples, cfg, minTime)
				if err != nil {
					return err
				}
				res = append(res, r)
			}
			if c.String("format") == "json" {
				return writeJSON(out(c), res)
			}
			tw := tabwriter.NewWriter(out(c), 0, 0, 2, ' ', tabwriter.AlignRight)
			fmt.Fprintln(tw, "size\tworkers\timages\tseconds\timages/s\t")
			for _, r := range res {
				fmt.Fprintf(tw, "%d\t%d\t%d\t%.1f\t%.1f\t\n", r.Size, r.Workers, r.Images, r.Seconds, r.ImagesPerSecond)
			}
			return tw.Flush()
		},
	}
}

// benchPipeline pulls batches from a fresh (uncached) loader for at least
// minTime after one warm-up batch, epoch after epoch.
func benchPipeline(ctx context.Context, samples []augment.Sample, cfg augment.LoaderConfig, minTime time.Duration) (BenchPipeline, error) {
	l, err := augment.NewLoader(samples, cfg)
	if err != nil {
		return BenchPipeline{}, err
	}
	cfg = l.Config()
	res := BenchPipeline{Size: cfg.Size, Workers: cfg.Workers, Batch: cfg.BatchSize, Augment: string(cfg.Augment)}
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
