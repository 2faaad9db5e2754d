package settings

import (
	"fmt"
	"runtime"
	"strconv"
	"strings"

	"github.com/kfash-tf/kfash-tf/augment"
	"github.com/kfash-tf/kfash-tf/graphs/runs"
	"github.com/kfash-tf/kfash-tf/models/catalog"
)

// train is the table: every `kfash-tf train` flag, in --help order.
//
// The defaults are a run's settings without --recipe (the "default"
// recipe): the best recipe measured on two datasets, clothing-small's
// t-shirt/pants/shoes photos and the demo's Fashion-MNIST classes, 3 seeds
// each (PARITY.md): Glorot initialisation and label smoothing 0.1 on the
// study's AdamW at 3e-4. Pixels go in raw (0–255), as in the study: /255
// measured worse, and with PyTorch's initialisation the BN-free networks
// start several times faster on raw pixels than on normalised ones, whose
// signal fades through the layers. The seed recipe pins every default that
// is not the study's.
var train = []Setting{
	{Name: "data", Kind: String, Usage: "dataset folder: Train/ Validation/ [Test/] of class folders (any letter case)",
		// No Recorded: the sweep compares it as a folder (two paths may name
		// the same one), with the classes, by itself.
		Apply: func(c *runs.Config, v Value) { c.Data = v.String }},
	{Name: "classes", Kind: String, Usage: "comma-separated classes to use, in label order (default: every class folder, sorted)"},
	{Name: "out", Kind: String, Usage: "run folder (default runs/NETWORK-YYYYmmdd-HHMMSS)"},
	{Name: "resume", Kind: String, Usage: "continue the run in this folder with its configuration, from its last checkpoint (see --from); a run killed before its first checkpoint starts again from epoch 1"},
	{Name: "from", Kind: String, Default: Value{String: "last"}, Usage: "with --resume: the checkpoint to continue from, last or best (when last is unreadable; later epochs are redone)"},
	{Name: "recipe", Kind: String, Default: Value{String: RecipeDefault}, Usage: recipeUsage(),
		Apply:    func(c *runs.Config, v Value) { c.Recipe = orDefault(v.String, RecipeDefault) },
		Recorded: func(c runs.Config) string { return orDefault(c.Recipe, RecipeDefault) }},
	{Name: "init", Kind: String, Default: Value{String: "glorot"}, Usage: "initial weights of convolution and dense layers: torch (PyTorch's defaults, as the study), glorot (Keras's: Glorot-uniform kernels, zero biases) or he (He-normal kernels, zero biases)",
		Apply:    func(c *runs.Config, v Value) { c.Init = v.String },
		Recorded: func(c runs.Config) string { return orDefault(c.Init, "torch") }},
	{Name: "epochs", Kind: Int, Default: Value{Int: 10}, Range: AtLeast(1), Usage: "epochs to train",
		Apply: func(c *runs.Config, v Value) { c.Epochs = int(v.Int) }},
	{Name: "batch-size", Kind: Int, Default: Value{Int: 32}, Range: BatchRange, Usage: "images per step (per task with --cluster)",
		Apply:    func(c *runs.Config, v Value) { c.BatchSize = int(v.Int) },
		Recorded: func(c runs.Config) string { return strconv.Itoa(c.BatchSize) }},
	{Name: "optimizer", Kind: String, Default: Value{String: "adamw"}, Usage: "adam (L2 coupled, as PyTorch's Adam), adamw (decoupled decay) or sgd (momentum)",
		Apply:    func(c *runs.Config, v Value) { c.Optimizer.Name = v.String },
		Recorded: func(c runs.Config) string { return c.Optimizer.Name }},
	{Name: "lr", Kind: Float, Default: Value{Float: 3e-4}, Range: Positive(), Usage: "learning rate (peak of the schedule)",
		Apply:    func(c *runs.Config, v Value) { c.Schedule.Base = v.Float },
		Recorded: func(c runs.Config) string { return formatFloat(c.Schedule.Base) }},
	{Name: "weight-decay", Kind: Float, Default: Value{Float: 1e-4}, Range: AtLeast(0), Usage: "weight decay λ",
		Apply:    func(c *runs.Config, v Value) { c.Optimizer.WeightDecay = v.Float },
		Recorded: func(c runs.Config) string { return formatFloat(c.Optimizer.WeightDecay) }},
	{Name: "momentum", Kind: Float, Default: Value{Float: 0.9}, Range: Fraction(), Usage: "sgd momentum",
		Apply: func(c *runs.Config, v Value) { c.Optimizer.Momentum = v.Float }},
	{Name: "no-decay-bn-bias", Kind: Bool, Usage: "apply weight decay to conv and dense kernels only, not to biases and batch-norm parameters",
		Apply: func(c *runs.Config, v Value) { c.Optimizer.NoDecayBNBias = v.Bool }},
	{Name: "schedule", Kind: String, Default: Value{String: "constant"}, Usage: "learning-rate schedule: constant, cosine (with --warmup-epochs) or step (with --step-epochs, --gamma)",
		Apply:    func(c *runs.Config, v Value) { c.Schedule.Kind = v.String },
		Recorded: func(c runs.Config) string { return c.Schedule.Kind }},
	{Name: "warmup-epochs", Kind: Float, Range: AtLeast(0), Usage: "cosine: linear warmup length in epochs",
		Apply: func(c *runs.Config, v Value) { c.Schedule.WarmupEpochs = v.Float }},
	{Name: "step-epochs", Kind: Int, Default: Value{Int: 30}, Range: AtLeast(1), Usage: "step: epochs between decays",
		Apply: func(c *runs.Config, v Value) { c.Schedule.StepEpochs = int(v.Int) }},
	// A step decay multiplies the rate by gamma: above 1 it would grow
	// without bound.
	{Name: "gamma", Kind: Float, Default: Value{Float: 0.1}, Range: &Range{Lo: 0, Hi: 1, LoOpen: true}, Usage: "step: decay factor",
		Apply: func(c *runs.Config, v Value) { c.Schedule.Gamma = v.Float }},
	{Name: "clip-norm", Kind: Float, Range: AtLeast(0), Usage: "clip gradients to this global norm (0: off)",
		Apply: func(c *runs.Config, v Value) { c.Optimizer.ClipNorm = v.Float }},
	{Name: "label-smoothing", Kind: Float, Default: Value{Float: 0.1}, Range: Fraction(), Usage: "label smoothing ε (0: off)",
		Apply:    func(c *runs.Config, v Value) { c.LabelSmoothing = float32(v.Float) },
		Recorded: func(c runs.Config) string { return formatFloat(float64(c.LabelSmoothing)) }},
	// The default -1 keeps the network's own rate, which train sets before
	// applying the flags; a given rate is in [0, 1) (Range).
	{Name: "dropout", Kind: Float, Default: Value{Float: -1}, Range: Fraction(), Usage: "dropout rate for networks with dropout (default: the study's for the network)",
		Apply: func(c *runs.Config, v Value) {
			if v.Float >= 0 {
				c.Dropout = float32(v.Float)
			}
		},
		Recorded: func(c runs.Config) string { return formatFloat(float64(c.Dropout)) }},
	{Name: "normalize", Kind: String, Default: Value{String: "none"}, Usage: "pixel preprocessing, inside the graph: none (raw 0-255, as the study), unit (/255) or imagenet",
		Apply:    func(c *runs.Config, v Value) { c.Normalize = v.String },
		Recorded: func(c runs.Config) string { return c.Normalize }},
	{Name: "augment", Kind: String, Default: Value{String: "online"}, Usage: "online (fresh flip/rotation each epoch), double (the study's fixed doubling) or none",
		Apply:    func(c *runs.Config, v Value) { c.Augment = v.String },
		Recorded: func(c runs.Config) string { return c.Augment }},
	// Resolved against the dataset's class counts: config.json records the
	// weights, not the flag.
	{Name: "class-weights", Kind: String, Default: Value{String: "none"}, Usage: "none, or auto (inverse class frequency) for imbalanced folders"},
	{Name: "seed", Kind: Int64, Default: Value{Int: 1}, Usage: "seed of the data order, augmentation, initial weights and dropout",
		Apply:    func(c *runs.Config, v Value) { c.Seed = v.Int },
		Recorded: func(c runs.Config) string { return strconv.FormatInt(c.Seed, 10) }},
	{Name: "select", Kind: String, Default: Value{String: runs.SelectValAcc}, Usage: "best checkpoint by val_acc (the study's rule: first epoch with the highest) or val_loss",
		Apply:    func(c *runs.Config, v Value) { c.Select = v.String },
		Recorded: func(c runs.Config) string { return c.Select }},
	{Name: "patience", Kind: Int, Range: AtLeast(0), Usage: "stop after N epochs without a better --select metric (0: off)",
		Apply: func(c *runs.Config, v Value) { c.Patience = int(v.Int) }},
	{Name: "workers", Kind: Int, Default: Value{Int: int64(runtime.NumCPU())}, Range: WorkersRange, Usage: "image decoding goroutines",
		Apply: func(c *runs.Config, v Value) { c.Workers = int(v.Int) }},
	{Name: "prefetch", Kind: Int, Default: Value{Int: 2}, Range: Between(0, 1024), Usage: "batches prepared ahead of the training step"},
	// MiB, shifted into bytes: the bound keeps the shift from overflowing.
	{Name: "cache-mb", Kind: Int, Range: Between(0, 1<<30), Usage: "keep decoded, resized images in memory if they fit in this many MiB (0: stream from disk)"},
	{Name: "intra-op-threads", Kind: Int, Range: ThreadsRange, Usage: "threads inside one TensorFlow op (0: the core count)",
		Apply: func(c *runs.Config, v Value) { c.Session.IntraOpThreads = int(v.Int) }},
	{Name: "inter-op-threads", Kind: Int, Range: ThreadsRange, Usage: "TensorFlow ops run in parallel (0: TensorFlow's default)",
		Apply: func(c *runs.Config, v Value) { c.Session.InterOpThreads = int(v.Int) }},
	{Name: "device", Kind: String, Usage: "cpu or gpu: pin the placement (default: TensorFlow's choice)",
		Apply: func(c *runs.Config, v Value) { c.Session.Device = v.String }},
	{Name: "gpus", Kind: String, Usage: "the GPUs this process may use, e.g. 0,1 (CUDA numbers, as nvidia-smi lists them; default: all); with several GPUs, one cluster task per GPU with --gpus I each",
		Apply: func(c *runs.Config, v Value) { c.Session.GPUs = v.String }},
	// Synchronous data-parallel training on several processes (see
	// app/train_cluster.go). They say where and how a run trains, not what
	// it is: no Apply (config.json records the number of tasks and the
	// global batch instead) and nothing a sweep's plan should set.
	{Name: "cluster", Kind: String, Usage: "train on several processes or machines: every task's host:port, comma-separated, the same list on every task, task 0 the chief (default: $TF_CONFIG's cluster.worker)"},
	{Name: "task", Kind: Int, Range: Between(0, 65535), Usage: "with --cluster: this process's index in the list (default: $TF_CONFIG's task.index)"},
	{Name: "collective-timeout", Kind: String, Default: Value{String: DefaultCollectiveTimeout}, Usage: "with --cluster: how long a task waits for the others at a step, a validation or the start before the run fails (a lost or hung task); it must cover the slowest first step, validation and checkpoint"},
	{Name: "lr-scale", Kind: String, Default: Value{String: LRScaleNone}, Usage: "with --cluster: none (--lr is used as given) or linear (--lr × the number of tasks: the linear scaling rule for a global batch of tasks × --batch-size)"},
}

// DefaultCollectiveTimeout is --collective-timeout's default. A task waits
// at a collective for the slowest task's work since the last one: a first
// step (graph optimisation, seconds to a minute for the large networks on a
// slow CPU), a validation pass with a skewed shard, the chief's checkpoint
// of a large network (hundreds of MB written and fsynced) or its start
// (dataset scan, restore). Five minutes covers these with room, and still
// ends a run whose task hangs within minutes; a task that dies is noticed
// at once whatever the timeout (its connection closes).
const DefaultCollectiveTimeout = "5m"

// The values of --lr-scale.
const (
	LRScaleNone   = "none"
	LRScaleLinear = "linear"
)

// orDefault returns v, or def when v is empty: how a setting that run
// folders did not always record reads in an old one.
func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// formatFloat spells a recorded number in the shortest form that reads
// back the same.
func formatFloat(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

// The recipes --recipe accepts.
const (
	// RecipeDefault is the flag defaults: the best recipe measured across
	// the parity datasets (PARITY.md). No --recipe is the same.
	RecipeDefault = "default"
	// RecipeSeed is the study's: its hyperparameters for the network and
	// everything else as it trained (PyTorch initialisation, raw pixels, a
	// constant rate, no label smoothing, the doubling augmentation).
	RecipeSeed = "seed"
)

// recipes is what each recipe is, for --help and its error messages.
var recipes = []struct{ name, about string }{
	{RecipeDefault, "the flag defaults: the best recipe measured, see PARITY.md; the same as no --recipe"},
	{RecipeSeed, "the study's: the network's batch, optimizer, lr, decay and dropout, 100 epochs, PyTorch initialisation, raw pixels, constant rate, doubling augmentation"},
}

// RecipeNames returns the names --recipe accepts.
func RecipeNames() []string {
	names := make([]string, len(recipes))
	for i, r := range recipes {
		names[i] = r.name
	}
	return names
}

// recipeUsage lists the recipes for --recipe's help.
func recipeUsage() string {
	var b strings.Builder
	b.WriteString("training recipe: ")
	for i, r := range recipes {
		if i > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "%s (%s)", r.name, r.about)
	}
	b.WriteString(". Flags given override the recipe")
	return b.String()
}

// Recipe returns the settings that --recipe name gives network e, by
// setting name: the flags a user gives override them. The default recipe
// (and the empty name) sets nothing: its values are the flag defaults.
func Recipe(name string, e catalog.Entry) (map[string]Value, error) {
	switch name {
	case "", RecipeDefault:
		return nil, nil
	case RecipeSeed:
		r := e.Recipe
		// The recipe's dropout is the network's own: train uses it without
		// a recipe too (see the dropout setting). Every setting whose
		// default is not the study's is pinned here.
		return map[string]Value{
			"epochs":          {Int: int64(r.Epochs)},
			"batch-size":      {Int: int64(r.BatchSize)},
			"optimizer":       {String: r.Optimizer},
			"lr":              {Float: r.LR},
			"weight-decay":    {Float: r.WeightDecay},
			"augment":         {String: string(augment.ModeDouble)},
			"init":            {String: "torch"},
			"normalize":       {String: "none"},
			"schedule":        {String: "constant"},
			"label-smoothing": {Float: 0},
		}, nil
	}
	return nil, fmt.Errorf("unknown --recipe %q: use %s", name, strings.Join(RecipeNames(), " or "))
}
