package benchmark

import (
	"fmt"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	tf "github.com/galeone/tensorflow/tensorflow/go"

	"github.com/kfash-tf/kfash-tf/augment"
	"github.com/kfash-tf/kfash-tf/graphs"
	"github.com/kfash-tf/kfash-tf/graphs/runs"
	"github.com/kfash-tf/kfash-tf/models"
)

// Measure is one thing Network can time.
type Measure string

// The measures of Network.
const (
	Train   Measure = "train"   // training images/s at Plan.Batch
	Infer   Measure = "infer"   // inference images/s at Plan.InferBatch
	Latency Measure = "latency" // one image through the inference graph
)

// classes are the output classes of the benchmarked networks: the study's
// three.
var classes = []string{"resort", "retro", "sporty"}

// Plan is what Network runs.
type Plan struct {
	Spec       models.Spec
	Measures   map[Measure]bool
	Batch      int // training batch
	InferBatch int // inference batch (latency always uses 1 image)
	Warmup     int // untimed steps before each measure
	// Each measure steps until both MinSteps and MinTime are reached.
	MinSteps  int
	MinTime   time.Duration
	Optimizer runs.OptimizerConfig
	Session   runs.SessionConfig
	StepTimes bool // keep every timed step in Timing.StepMS
	// XLA lets XLA's JIT compile the graphs (TF_XLA_FLAGS auto-clustering);
	// it applies to every session the process opens afterwards.
	XLA bool
	// OnGraph, when not nil, is called with the training graph once it is
	// built and initialised, before anything is timed (e.g. to save it for
	// a profiler); its error ends the run.
	OnGraph func(*graphs.TrainGraph) error
}

// Training is a training-throughput measurement.
type Training struct {
	Timing
	Optimizer    string  `json:"optimizer"`
	WeightDecay  float64 `json:"weight_decay"`
	PeakRSSBytes int64   `json:"peak_rss_bytes"` // the process's peak RSS when training ended
	Loss         float64 `json:"last_loss"`      // proof that the steps ran
}

// Report is the result of Network. bench/run.py reads its JSON; the Keras
// and PyTorch peers print the same layout.
type Report struct {
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
	Train           *Training          `json:"train,omitempty"`
	Infer           *Timing            `json:"infer,omitempty"`
	Latency         *Timing            `json:"latency,omitempty"`
	PeakRSSBytes    int64              `json:"peak_rss_bytes"` // at the end of the whole run
}

// Network builds the plan's network and times what the plan asks for;
// progress goes to w.
func Network(p Plan, w io.Writer) (*Report, error) {
	if p.XLA {
		if err := enableXLA(); err != nil {
			return nil, err
		}
	}
	sum, err := models.Summarize(p.Spec, p.Spec.Config(len(classes)))
	if err != nil {
		return nil, err
	}
	rep := &Report{
		System: "kfash-tf", Network: p.Spec.Name, InputSize: p.Spec.InputSize, TrainableParams: sum.TrainableParams,
		ForwardFLOPs: sum.ForwardFLOPs, TensorFlow: tf.Version(), GoVersion: runtime.Version(), Threads: runtime.NumCPU(),
		Session: p.Session, XLA: p.XLA,
	}
	pred, err := trainThenRestore(p, rep, w)
	if err != nil {
		return nil, err
	}
	if pred != nil {
		defer pred.Close()
		if p.Measures[Infer] {
			fmt.Fprintf(w, "bench %s: inference at batch %d ...\n", p.Spec.Name, p.InferBatch)
			if rep.Infer, err = timePredict(p, pred, p.InferBatch); err != nil {
				return nil, err
			}
		}
		if p.Measures[Latency] {
			fmt.Fprintf(w, "bench %s: latency of one image ...\n", p.Spec.Name)
			if rep.Latency, err = timePredict(p, pred, 1); err != nil {
				return nil, err
			}
		}
	}
	rep.PeakRSSBytes = peakRSS()
	return rep, nil
}

// enableXLA turns on XLA auto-clustering for the sessions this process
// opens. TensorFlow reads TF_XLA_FLAGS once, when the first graph is
// optimised, so this must run before any session exists; on the CPU,
// clustering also needs --tf_xla_cpu_global_jit.
func enableXLA() error {
	flags := strings.TrimSpace(os.Getenv("TF_XLA_FLAGS") + " --tf_xla_auto_jit=2 --tf_xla_cpu_global_jit")
	return os.Setenv("TF_XLA_FLAGS", flags)
}

// trainThenRestore times training if the plan asks for it and, if it asks
// for inference, returns a predictor restored from the trainer's weights
// (trained for a few steps, or initial: speed does not depend on them). The
// training session is closed before the predictor is used: the predictor
// then runs alone, as in 'kfash-tf predict' and 'serve'.
func trainThenRestore(p Plan, rep *Report, w io.Writer) (*graphs.Predictor, error) {
	tg, trainer, err := newTrainer(p)
	if err != nil {
		return nil, err
	}
	defer trainer.Close()
	if p.OnGraph != nil {
		if err := p.OnGraph(tg); err != nil {
			return nil, err
		}
	}
	if p.Measures[Train] {
		fmt.Fprintf(w, "bench %s: training at batch %d ...\n", p.Spec.Name, p.Batch)
		if rep.Train, err = timeTraining(p, trainer); err != nil {
			return nil, err
		}
	}
	if !p.Measures[Infer] && !p.Measures[Latency] {
		return nil, nil
	}
	return newPredictor(p, tg, trainer)
}

// newTrainer builds the network's training graph with the plan's optimizer
// and initialises it.
func newTrainer(p Plan) (*graphs.TrainGraph, *graphs.Trainer, error) {
	tg, err := graphs.BuildTrainGraph(graphs.ModelConfig{
		Network: p.Spec, Net: p.Spec.Config(len(classes)), Std: [3]float32{1, 1, 1}, Seed: 1, Optimizer: p.Optimizer,
	})
	if err != nil {
		return nil, nil, err
	}
	trainer, err := graphs.NewTrainer(tg, p.Spec.InputSize, p.Session)
	if err != nil {
		return nil, nil, err
	}
	if err := trainer.Initialize(); err != nil {
		trainer.Close()
		return nil, nil, err
	}
	return tg, trainer, nil
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
		b.Labels[i] = int32(i % len(classes))
	}
	return b
}

// timeTraining times training steps on one batch held in memory.
func timeTraining(p Plan, t *graphs.Trainer) (*Training, error) {
	b := syntheticBatch(p.Batch, p.Spec.InputSize, 1)
	res := &Training{Optimizer: p.Optimizer.Name, WeightDecay: p.Optimizer.WeightDecay}
	step := int64(0)
	timing, err := timeSteps(p.Warmup, p.MinSteps, p.MinTime, func() error {
		step++
		loss, _, err := t.TrainBatch(b, 1e-4, step)
		res.Loss = loss
		return err
	})
	if err != nil {
		return nil, err
	}
	res.Timing = timing.summary(p.Batch, p.Warmup, p.StepTimes)
	res.PeakRSSBytes = peakRSS()
	return res, nil
}

// newPredictor hands the trainer's weights to an inference graph through a
// checkpoint, as predict and serve get them.
func newPredictor(p Plan, tg *graphs.TrainGraph, t *graphs.Trainer) (*graphs.Predictor, error) {
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
		Network: p.Spec.Name, InputSize: p.Spec.InputSize, Classes: classes, Std: [3]float32{1, 1, 1},
		Dropout: p.Spec.Recipe.Dropout, Seed: 1,
	})
	if err != nil {
		return nil, err
	}
	return graphs.NewPredictor(ig, prefix, p.Session)
}

// timePredict times Predict on n images.
func timePredict(p Plan, pred *graphs.Predictor, n int) (*Timing, error) {
	b := syntheticBatch(n, p.Spec.InputSize, 2)
	timing, err := timeSteps(p.Warmup, p.MinSteps, p.MinTime, func() error {
		_, _, err := pred.Predict(b.Images, n, nil)
		return err
	})
	if err != nil {
		return nil, err
	}
	s := timing.summary(n, p.Warmup, p.StepTimes)
	return &s, nil
}
