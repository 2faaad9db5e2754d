package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	tf "github.com/galeone/tensorflow/tensorflow/go"
	"github.com/urfave/cli/v2"

	"github.com/kfash-tf/kfash-tf/augment"
	"github.com/kfash-tf/kfash-tf/graphs"
	"github.com/kfash-tf/kfash-tf/graphs/runs"
	"github.com/kfash-tf/kfash-tf/internal/crashpoint"
	"github.com/kfash-tf/kfash-tf/models"
)

// trainDefaults are the settings of a run without --recipe. Pixels go in
// raw (0–255), as in the study: with PyTorch's default initialisation the
// BN-free networks (vgg8, vgg10, googlenet) start several times faster on
// raw pixels than on normalised ones, whose signal fades through the layers.
var trainDefaults = struct {
	epochs, batch   int
	optimizer       string
	lr, weightDecay float64
	normalize       string
	augment         string
}{epochs: 10, batch: 32, optimizer: "adamw", lr: 3e-4, weightDecay: 1e-4, normalize: "none", augment: "online"}

func trainFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "data", Usage: "dataset folder: Train/ Validation/ [Test/] of class folders (any letter case)"},
		&cli.StringFlag{Name: "classes", Usage: "comma-separated classes to use, in label order (default: every class folder, sorted)"},
		&cli.StringFlag{Name: "out", Usage: "run folder (default runs/NETWORK-YYYYmmdd-HHMMSS)"},
		&cli.StringFlag{Name: "resume", Usage: "continue the run in this folder with its configuration, from its last checkpoint (see --from); a run killed before its first checkpoint starts again from epoch 1"},
		&cli.StringFlag{Name: "from", Value: "last", Usage: "with --resume: the checkpoint to continue from, last or best (when last is unreadable; later epochs are redone)"},
		&cli.StringFlag{Name: "recipe", Usage: "'seed': the study's hyperparameters for the network (batch, optimizer, lr, decay, dropout, 100 epochs, doubling augmentation); flags given override it"},
		&cli.IntFlag{Name: "epochs", Value: trainDefaults.epochs, Usage: "epochs to train"},
		&cli.IntFlag{Name: "batch-size", Value: trainDefaults.batch, Usage: "images per step"},
		&cli.StringFlag{Name: "optimizer", Value: trainDefaults.optimizer, Usage: "adam (L2 coupled, as PyTorch's Adam), adamw (decoupled decay) or sgd (momentum)"},
		&cli.Float64Flag{Name: "lr", Value: trainDefaults.lr, Usage: "learning rate (peak of the schedule)"},
		&cli.Float64Flag{Name: "weight-decay", Value: trainDefaults.weightDecay, Usage: "weight decay λ"},
		&cli.Float64Flag{Name: "momentum", Value: 0.9, Usage: "sgd momentum"},
		&cli.BoolFlag{Name: "no-decay-bn-bias", Usage: "apply weight decay to conv and dense kernels only, not to biases and batch-norm parameters"},
		&cli.StringFlag{Name: "schedule", Value: "constant", Usage: "learning-rate schedule: constant, cosine (with --warmup-epochs) or step (with --step-epochs, --gamma)"},
		&cli.Float64Flag{Name: "warmup-epochs", Value: 0, Usage: "cosine: linear warmup length in epochs"},
		&cli.IntFlag{Name: "step-epochs", Value: 30, Usage: "step: epochs between decays"},
		&cli.Float64Flag{Name: "gamma", Value: 0.1, Usage: "step: decay factor"},
		&cli.Float64Flag{Name: "clip-norm", Value: 0, Usage: "clip gradients to this global norm (0: off)"},
		&cli.Float64Flag{Name: "label-smoothing", Value: 0, Usage: "label smoothing ε"},
		&cli.Float64Flag{Name: "dropout", Value: -1, Usage: "dropout rate for networks with dropout (default: the study's for the network)"},
		&cli.StringFlag{Name: "normalize", Value: trainDefaults.normalize, Usage: "pixel preprocessing, inside the graph: none (raw 0-255, as the study), unit (/255) or imagenet"},
		&cli.StringFlag{Name: "augment", Value: trainDefaults.augment, Usage: "online (fresh flip/rotation each epoch), double (the study's fixed doubling) or none"},
		&cli.StringFlag{Name: "class-weights", Value: "none", Usage: "none, or auto (inverse class frequency) for imbalanced folders"},
		&cli.Int64Flag{Name: "seed", Value: 1, Usage: "seed of the data order, augmentation, initial weights and dropout"},
		&cli.StringFlag{Name: "select", Value: runs.SelectValAcc, Usage: "best checkpoint by val_acc (the study's rule: first epoch with the highest) or val_loss"},
		&cli.IntFlag{Name: "patience", Value: 0, Usage: "stop after N epochs without a better --select metric (0: off)"},
		&cli.IntFlag{Name: "workers", Value: runtime.NumCPU(), Usage: "image decoding goroutines"},
		&cli.IntFlag{Name: "prefetch", Value: 2, Usage: "batches prepared ahead of the training step"},
		&cli.IntFlag{Name: "cache-mb", Value: 0, Usage: "keep decoded, resized images in memory if they fit in this many MiB (0: stream from disk)"},
		&cli.IntFlag{Name: "intra-op-threads", Value: 0, Usage: "threads inside one TensorFlow op (0: the core count)"},
		&cli.IntFlag{Name: "inter-op-threads", Value: 0, Usage: "TensorFlow ops run in parallel (0: TensorFlow's default)"},
		&cli.StringFlag{Name: "device", Usage: "cpu or gpu: pin the placement (default: TensorFlow's choice)"},
	}
}

func trainCommand(version string) *cli.Command {
	return &cli.Command{
		Name:      "train",
		Usage:     "train a network on a folder of photos",
		ArgsUsage: "NETWORK --data DIR | --resume RUN",
		Description: "Trains one of the networks (see 'kfash-tf models') on DIR, validating after every\n" +
			"epoch. The run folder gets config.json, metrics.csv / metrics.jsonl and checkpoints\n" +
			"(last after every epoch, best by --select) in TensorFlow's checkpoint format.\n" +
			"Ctrl-C saves the run; --resume continues it exactly where it stopped. A killed run\n" +
			"(kill -9, power cut) resumes from its newest complete checkpoint, or from epoch 1 if it\n" +
			"had none; --resume RUN --from best continues from the best one when last is damaged.\n" +
			"One process at a time may write a run folder: a second train on it fails at once.\n\n" +
			"Examples:\n" +
			"  kfash-tf train vgg8 --data photos/ --classes t-shirt,pants,shoes --epochs 5 --out runs/cs3\n" +
			"  kfash-tf train googlenet --recipe seed --data kfashion/ --epochs 20\n" +
			"  kfash-tf train --resume runs/cs3\n" +
			"  kfash-tf train --resume runs/cs3 --from best",
		Flags:  trainFlags(),
		Action: func(c *cli.Context) error { return runTrain(c, version) },
	}
}

// trainSetup is a run's configuration resolved from flags or a resumed run.
type trainSetup struct {
	spec    models.Spec
	cfg     runs.Config
	run     runs.Run
	resumed bool
}

func runTrain(c *cli.Context, version string) error {
	ts, ds, err := resolveTraining(c, version)
	if err != nil {
		return err
	}
	from, err := resumeFrom(c)
	if err != nil {
		return err
	}
	// One writer per run folder: a second train on it would interleave
	// metrics rows and checkpoints. The kernel drops the lock on any exit.
	lock, err := runs.LockDir(ts.run.Dir)
	if err != nil {
		return err
	}
	defer lock.Release()
	crash, err := crashpoint.FromEnv()
	if err != nil {
		return err
	}
	ts.run = ts.run.WithCrashPoints(crash)
	cfg := ts.cfg
	w := c.App.ErrWriter
	skips := new(int)
	onSkip := func(r augment.SkipReport) {
		*skips++
		fmt.Fprintf(w, "skipping %s\n", r)
	}
	// Open left out what is not a regular file (a FIFO would block a read).
	for _, f := range ds.Skipped {
		*skips++
		fmt.Fprintf(w, "skipping %s: %s\n", f.Path, f.Reason)
	}
	trainSamples, _ := ds.Split("train")
	valSamples, _ := ds.Split("validation")
	cacheBudget := int64(c.Int("cache-mb")) << 20
	trainLoader, err := augment.NewLoader(trainSamples, augment.LoaderConfig{
		Size: cfg.InputSize, BatchSize: cfg.BatchSize, Shuffle: true, Augment: augment.Mode(cfg.Augment), Seed: cfg.Seed,
		Workers: cfg.Workers, Prefetch: c.Int("prefetch"), Cache: cacheBudget > 0, CacheBudgetBytes: cacheBudget, OnSkip: onSkip})
	if err != nil {
		return err
	}
	valLoader, err := augment.NewLoader(valSamples, augment.LoaderConfig{
		Size: cfg.InputSize, BatchSize: cfg.BatchSize, Workers: cfg.Workers, Prefetch: c.Int("prefetch"),
		Cache: cacheBudget > 0, CacheBudgetBytes: cacheBudget, OnSkip: onSkip})
	if err != nil {
		return err
	}
	cfg.Schedule.Epochs, cfg.Schedule.StepsPerEpoch = cfg.Epochs, trainLoader.Steps()

	tg, err := graphs.BuildTrainGraph(modelConfig(ts.spec, cfg))
	if err != nil {
		return err
	}
	trainer, err := graphs.NewTrainer(tg, cfg.InputSize, cfg.Session)
	if err != nil {
		return err
	}
	defer trainer.Close()
	if cfg.Devices, err = graphs.Devices(trainer.Sess); err != nil {
		return err
	}

	var resume *runs.LoopState
	run := ts.run
	if ts.resumed {
		st, ok, err := restoreForResume(trainer, run, from, w)
		if err != nil {
			return err
		}
		if ok {
			resume = &st
			fmt.Fprintf(w, "resuming %s at epoch %d, step %d\n", run.Dir, st.Epoch+1, st.Step)
		} else {
			fmt.Fprintf(w, "%s has no complete checkpoint (killed before its first one): starting again from epoch 1 with its configuration\n", run.Dir)
			if err := trainer.Initialize(); err != nil {
				return err
			}
		}
		// Rows after the checkpoint are redone; the pointers are set
		// right (best at the checkpoint's best epoch) and what a kill left
		// half-done is removed.
		if err := run.TruncateMetrics(st.Epoch); err != nil {
			return err
		}
		if err := run.RepairCheckpoints(st.BestEpoch); err != nil {
			return err
		}
	} else {
		cfg.Created = time.Now().UTC()
		if run, err = run.Create(cfg); err != nil {
			if errors.Is(err, runs.ErrExists) {
				return fmt.Errorf("%s already holds a run: continue it with 'kfash-tf train --resume %s', or choose another --out", run.Dir, run.Dir)
			}
			return err
		}
		if err := trainer.Initialize(); err != nil {
			return err
		}
	}
	fmt.Fprintf(w, "training %s on %s: %d classes (%s), %d train / %d validation images, batch %d, %s lr %g, %d epochs → %s\n",
		cfg.Network, cfg.Data, len(cfg.Classes), strings.Join(cfg.Classes, ", "), trainLoader.Len(), valLoader.Len(),
		cfg.BatchSize, cfg.Optimizer.Name, cfg.Schedule.Base, cfg.Epochs, run.Dir)

	// status.json tells a sweep or a report what became of the run.
	status := runs.Status{State: runs.StateRunning, Epochs: cfg.Epochs}
	if resume != nil {
		status.EpochsDone, status.BestEpoch = resume.Epoch, resume.BestEpoch
	}
	if err := run.WriteStatus(status); err != nil {
		return err
	}
	st, err := fitRun(c, w, trainer, tg, run, cfg, trainLoader, valLoader, resume)
	err = graphs.StripTFHint(err)
	status.EpochsDone, status.BestEpoch, status.Updated = st.Epoch, st.BestEpoch, time.Time{}
	switch {
	case errors.Is(err, context.Canceled):
		status.State = runs.StateInterrupted
	case err != nil:
		status.State, status.Error = runs.StateFailed, err.Error()
	default:
		status.State = runs.StateFinished
	}
	if werr := run.WriteStatus(status); werr != nil && err == nil {
		err = werr
	}
	switch {
	case errors.Is(err, context.Canceled):
		fmt.Fprintf(w, "run saved; continue it with: kfash-tf train --resume %s\n", run.Dir)
		return cli.Exit("", 130)
	case err != nil:
		return err
	}
	if cfg.Patience > 0 && st.Epoch < cfg.Epochs {
		fmt.Fprintf(w, "early stop after epoch %d: no better %s for %d epochs\n", st.Epoch, cfg.Select, cfg.Patience)
	}
	fmt.Fprintf(w, "done: best epoch %d (%s %.4f); %d unreadable files skipped; run folder %s\n", st.BestEpoch, cfg.Select, st.Best, *skips, run.Dir)
	return nil
}

// fitRun runs the training loop with the hooks that print progress, append
// metrics and write checkpoints.
func fitRun(c *cli.Context, w io.Writer, trainer *graphs.Trainer, tg *graphs.TrainGraph, run runs.Run, cfg runs.Config,
	trainLoader, valLoader *augment.Loader, resume *runs.LoopState) (runs.LoopState, error) {
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()
	prog := newProgress(w, cfg.Epochs)
	ckpt := run.Checkpoints()
	hooks := graphs.Hooks{
		OnStep: prog.step,
		OnEpoch: func(r runs.EpochResult, st runs.LoopState) error {
			prog.epoch(r)
			if err := run.AppendMetrics(r); err != nil {
				return err
			}
			names := []string{"last"}
			if r.Best {
				names = append(names, "best")
			}
			return ckpt.WriteWith(tg.Saver.SaveFunc(trainer.Sess), names, checkpointState(st, cfg.Seed))
		},
		OnInterrupt: func(st runs.LoopState) error {
			fmt.Fprintf(w, "\ninterrupted: saving epoch %d at batch %d to %s\n", st.Epoch+1, st.BatchesDone, ckpt.Dir)
			return ckpt.WriteWith(tg.Saver.SaveFunc(trainer.Sess), []string{"last"}, checkpointState(st, cfg.Seed))
		},
	}
	loopCfg := graphs.LoopConfig{Epochs: cfg.Epochs, Patience: cfg.Patience, Select: cfg.Select, Schedule: cfg.Schedule, Resume: resume}
	return trainer.Fit(ctx, trainLoader, valLoader, len(cfg.Classes), loopCfg, hooks)
}

// resolveTraining turns flags (or a resumed run's config.json) into a run
// configuration and opens and checks the dataset before anything is built.
func resolveTraining(c *cli.Context, version string) (trainSetup, *augment.Dataset, error) {
	var ts trainSetup
	if dir := c.String("resume"); dir != "" {
		if c.Args().Len() > 0 {
			return ts, nil, fmt.Errorf("--resume takes the network from %s/config.json: drop the NETWORK argument", dir)
		}
		run, cfg, err := runs.Open(dir)
		if err != nil {
			return ts, nil, err
		}
		if c.IsSet("epochs") {
			cfg.Epochs = c.Int("epochs") // the one setting a resume may change: train longer
		}
		spec, err := models.Get(cfg.Network)
		if err != nil {
			return ts, nil, err
		}
		ds, err := openTrainingData(cfg.Data, cfg.Classes)
		if err != nil {
			return ts, nil, err
		}
		return trainSetup{spec: spec, cfg: cfg, run: run, resumed: true}, ds, nil
	}
	if c.Args().Len() != 1 {
		return ts, nil, fmt.Errorf("train needs one network (%s) and --data DIR; or --resume RUN", strings.Join(models.Names(), ", "))
	}
	spec, err := models.Get(c.Args().First())
	if err != nil {
		return ts, nil, err
	}
	if c.String("data") == "" {
		return ts, nil, fmt.Errorf("train needs --data DIR: a folder with Train/ and Validation/ of class folders")
	}
	cfg, err := runConfigFromFlags(c, spec, version)
	if err != nil {
		return ts, nil, err
	}
	ds, err := openTrainingData(cfg.Data, splitList(c.String("classes")))
	if err != nil {
		return ts, nil, err
	}
	cfg.Classes = ds.Classes
	switch c.String("class-weights") {
	case "none", "":
	case "auto":
		train, _ := ds.Split("train")
		cfg.ClassWeights = augment.ClassWeights(train, len(ds.Classes))
	default:
		return ts, nil, fmt.Errorf("unknown --class-weights %q: use none or auto", c.String("class-weights"))
	}
	out := c.String("out")
	if out == "" {
		out = filepath.Join("runs", fmt.Sprintf("%s-%s", spec.Name, time.Now().Format("20060102-150405")))
	}
	return trainSetup{spec: spec, cfg: cfg, run: runs.Run{Dir: out}}, ds, nil
}

func openTrainingData(dir string, classes []string) (*augment.Dataset, error) {
	ds, err := augment.Open(dir, augment.OpenOptions{Classes: classes})
	if err != nil {
		return nil, err
	}
	if err := ds.CheckTraining(); err != nil {
		return nil, err
	}
	return ds, nil
}

// runConfigFromFlags applies the defaults, then the recipe, then every flag
// the user set.
func runConfigFromFlags(c *cli.Context, spec models.Spec, version string) (runs.Config, error) {
	cfg := runs.Config{
		Network: spec.Name, InputSize: spec.InputSize, Data: c.String("data"),
		Epochs: c.Int("epochs"), BatchSize: c.Int("batch-size"),
		Optimizer: runs.OptimizerConfig{Name: c.String("optimizer"), WeightDecay: c.Float64("weight-decay"), Momentum: c.Float64("momentum"),
			NoDecayBNBias: c.Bool("no-decay-bn-bias"), ClipNorm: c.Float64("clip-norm")},
		Schedule: runs.Schedule{Kind: c.String("schedule"), Base: c.Float64("lr"), Gamma: c.Float64("gamma"),
			WarmupEpochs: c.Float64("warmup-epochs"), StepEpochs: c.Int("step-epochs")},
		LabelSmoothing: float32(c.Float64("label-smoothing")), Dropout: spec.Recipe.Dropout,
		Normalize: c.String("normalize"), Augment: c.String("augment"), Seed: c.Int64("seed"),
		Select: c.String("select"), Patience: c.Int("patience"), Workers: c.Int("workers"),
		Session:    runs.SessionConfig{IntraOpThreads: c.Int("intra-op-threads"), InterOpThreads: c.Int("inter-op-threads"), Device: c.String("device")},
		TensorFlow: tf.Version(), Program: version,
	}
	switch c.String("recipe") {
	case "":
	case "seed":
		r := spec.Recipe
		cfg.Recipe = "seed"
		set := func(flag string, apply func()) {
			if !c.IsSet(flag) {
				apply()
			}
		}
		set("epochs", func() { cfg.Epochs = r.Epochs })
		set("batch-size", func() { cfg.BatchSize = r.BatchSize })
		set("optimizer", func() { cfg.Optimizer.Name = r.Optimizer })
		set("lr", func() { cfg.Schedule.Base = r.LR })
		set("weight-decay", func() { cfg.Optimizer.WeightDecay = r.WeightDecay })
		set("augment", func() { cfg.Augment = string(augment.ModeDouble) })
	default:
		return cfg, fmt.Errorf("unknown --recipe %q: the only recipe is 'seed' (the study's hyperparameters)", c.String("recipe"))
	}
	if c.IsSet("dropout") {
		cfg.Dropout = float32(c.Float64("dropout"))
	}
	if cfg.Dropout < 0 || cfg.Dropout >= 1 {
		return cfg, fmt.Errorf("--dropout %v must be in [0, 1)", cfg.Dropout)
	}
	if cfg.Epochs < 1 || cfg.BatchSize < 1 {
		return cfg, fmt.Errorf("--epochs and --batch-size must be at least 1")
	}
	norm, err := augment.ParseNormalize(cfg.Normalize)
	if err != nil {
		return cfg, err
	}
	cfg.Mean, cfg.Std = norm.MeanStd()
	if _, err := augment.ParseMode(cfg.Augment); err != nil {
		return cfg, err
	}
	if err := cfg.Optimizer.Validate(); err != nil {
		return cfg, err
	}
	if cfg.Select != runs.SelectValAcc && cfg.Select != runs.SelectValLoss {
		return cfg, fmt.Errorf("unknown --select %q: use %s or %s", cfg.Select, runs.SelectValAcc, runs.SelectValLoss)
	}
	if err := cfg.Schedule.Validate(); err != nil {
		return cfg, scheduleFlagError(err)
	}
	return cfg, nil
}

// scheduleFlagError words a schedule's *runs.SettingError in terms of the
// flag that sets the setting: "--lr must be a positive number, got 0".
func scheduleFlagError(err error) error {
	var se *runs.SettingError
	if !errors.As(err, &se) {
		return err
	}
	switch se.Setting {
	case "lr", "gamma":
		return fmt.Errorf("--%s %s", se.Setting, se.Problem)
	case "warmup_epochs", "step_epochs":
		return fmt.Errorf("--%s %s", strings.ReplaceAll(se.Setting, "_", "-"), se.Problem)
	case "kind":
		return fmt.Errorf("--schedule %s", se.Problem)
	}
	return err
}

func modelConfig(spec models.Spec, cfg runs.Config) graphs.ModelConfig {
	return graphs.ModelConfig{
		Network: spec, Net: models.Config{NumClasses: len(cfg.Classes), Dropout: cfg.Dropout},
		Mean: cfg.Mean, Std: cfg.Std, LabelSmoothing: cfg.LabelSmoothing, ClassWeights: cfg.ClassWeights,
		Seed: cfg.Seed, Optimizer: cfg.Optimizer,
	}
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// checkpointState records the loop's position with the variables.
func checkpointState(st runs.LoopState, seed int64) runs.CheckpointState {
	loop := st
	return runs.CheckpointState{Epoch: st.Epoch, Step: st.Step, Time: time.Now().UTC(), Seed: seed, Loop: &loop,
		Metrics: map[string]float64{"best": st.Best, "best_epoch": float64(st.BestEpoch)}}
}

// resumeFrom returns --from: which checkpoint a resume continues from.
func resumeFrom(c *cli.Context) (string, error) {
	from := c.String("from")
	if c.IsSet("from") && c.String("resume") == "" {
		return "", fmt.Errorf("--from %s needs --resume RUN", from)
	}
	if from != "last" && from != "best" {
		return "", fmt.Errorf("unknown --from %q: use last or best", from)
	}
	return from, nil
}

// restoreForResume loads the run's checkpoint called from ("last" or
// "best") into the trainer and returns where the run stood. ok is false,
// with no error, when a resume from last finds no complete checkpoint at
// all (a kill before the first one finished): the run starts again.
func restoreForResume(t *graphs.Trainer, run runs.Run, from string, w io.Writer) (st runs.LoopState, ok bool, err error) {
	rc, err := run.ResolveCheckpoint(from)
	if errors.Is(err, runs.ErrNoCheckpoint) && from == "last" {
		return st, false, nil
	}
	if err == nil {
		err = t.TG.Saver.Restore(t.Sess, rc.Prefix)
	}
	if err != nil {
		if from == "last" {
			if _, berr := run.ResolveCheckpoint("best"); berr == nil {
				return st, false, fmt.Errorf("cannot resume %s: its last checkpoint is unreadable: %w\n"+
					"continue from its best checkpoint instead (later epochs are redone): kfash-tf train --resume %s --from best", run.Dir, err, run.Dir)
			}
		}
		return st, false, fmt.Errorf("cannot resume %s from its %s checkpoint: %w", run.Dir, from, err)
	}
	if rc.Recovered != "" {
		fmt.Fprintf(w, "%s: %s\n", run.Dir, rc.Recovered)
	}
	if rc.State.Loop == nil {
		return runs.LoopState{Epoch: rc.State.Epoch, Step: rc.State.Step}, true, nil
	}
	return *rc.State.Loop, true, nil
}
