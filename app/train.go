package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	tf "github.com/galeone/tensorflow/tensorflow/go"
	"github.com/urfave/cli/v2"

	"github.com/kfash-tf/kfash-tf/app/settings"
	"github.com/kfash-tf/kfash-tf/augment"
	"github.com/kfash-tf/kfash-tf/graphs"
	"github.com/kfash-tf/kfash-tf/graphs/runs"
	"github.com/kfash-tf/kfash-tf/internal/crashpoint"
	"github.com/kfash-tf/kfash-tf/models"
	"github.com/kfash-tf/kfash-tf/tfops"
)

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
			"Several processes or machines train one run together (synchronous data parallelism)\n" +
			"when each runs the same command with --cluster host:port,host:port,... and its own\n" +
			"--task N (or TF_CONFIG, as a Kubeflow TFJob sets it). Task 0, the chief, writes the run\n" +
			"folder; the others take its settings and weights. --batch-size is per task: a step\n" +
			"trains on tasks x --batch-size images, and the learning rate stays --lr unless\n" +
			"--lr-scale linear multiplies it by the number of tasks. Batch-norm statistics are\n" +
			"per task (averaged at the end of each epoch). If a task fails, the others stop (at once,\n" +
			"or after --collective-timeout for a hung one): restart every task with --resume RUN.\n" +
			"The tasks' gRPC ports are unauthenticated: keep them on a private network.\n\n" +
			"Examples:\n" +
			"  kfash-tf train vgg8 --data photos/ --classes t-shirt,pants,shoes --epochs 5 --out runs/cs3\n" +
			"  kfash-tf train googlenet --recipe seed --data kfashion/ --epochs 20\n" +
			"  kfash-tf train --resume runs/cs3\n" +
			"  kfash-tf train --resume runs/cs3 --from best\n" +
			"  kfash-tf train vgg8 --data photos/ --out runs/dp --cluster h0:2222,h1:2222 --task 0   (on h0; --task 1 on h1)",
		Flags:  settings.Flags(),
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
	timeout, lrScale, err := clusterSettings(c)
	if err != nil {
		return err
	}
	cl, err := clusterFromFlags(c, os.Getenv(clusterEnv))
	if err != nil {
		return err
	}
	// rep is this task's place in a cluster; nil for one process.
	var rep *graphs.Replica
	tasks := 1
	if cl != nil {
		if rep, err = startReplica(c, *cl, timeout); err != nil {
			return err
		}
		if !cl.IsChief() {
			return runFollower(c, rep)
		}
		tasks = cl.Size()
	}
	// Until the other tasks have the chief's start message, a failure of
	// the chief is sent to them instead, so that they stop at once.
	fail := func(err error) error { return chiefFailed(rep, localSession(c, runs.SessionConfig{}), err) }

	ts, ds, err := resolveTraining(c, version)
	if err == nil {
		err = joinCluster(&ts, tasks, lrScale)
	}
	if err != nil {
		return fail(err)
	}
	from, err := resumeFrom(c)
	if err != nil {
		return fail(err)
	}
	// One writer per run folder: a second train on it would interleave
	// metrics rows and checkpoints. The kernel drops the lock on any exit.
	lock, err := runs.LockDir(ts.run.Dir)
	if err != nil {
		return fail(err)
	}
	// started: the run folder holds a run (resumed, or config.json written).
	started := ts.resumed
	defer func() {
		if started {
			lock.Release()
		} else {
			lock.Abandon()
		}
	}()
	crash, err := crashpoint.FromEnv()
	if err != nil {
		return fail(err)
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
	trainLoader, valLoader, err := newLoaders(c, cfg, ds, rep, onSkip)
	if err != nil {
		return fail(err)
	}
	cfg.Schedule.Epochs, cfg.Schedule.StepsPerEpoch = cfg.Epochs, trainLoader.Steps()

	var trainer *graphs.Trainer
	if rep != nil {
		trainer, err = newClusterTrainer(ts.spec, cfg, rep)
	} else {
		trainer, err = newTrainer(ts.spec, cfg)
	}
	if err != nil {
		return fail(err)
	}
	defer trainer.Close()
	tg := trainer.TG
	if cfg.Devices, err = graphs.Devices(trainer.Sess); err != nil {
		return fail(err)
	}

	var resume *runs.LoopState
	run := ts.run
	if ts.resumed {
		st, ok, err := restoreForResume(trainer, run, from, w)
		if err != nil {
			return fail(err)
		}
		if ok {
			resume = &st
			fmt.Fprintf(w, "resuming %s at epoch %d, step %d\n", run.Dir, st.Epoch+1, st.Step)
		} else {
			fmt.Fprintf(w, "%s has no complete checkpoint (killed before its first one): starting again from epoch 1 with its configuration\n", run.Dir)
			if err := trainer.Initialize(); err != nil {
				return fail(err)
			}
		}
		// Rows after the checkpoint are redone; the pointers are set
		// right (best at the checkpoint's best epoch) and what a kill left
		// half-done is removed.
		if err := run.TruncateMetrics(st.Epoch); err != nil {
			return fail(err)
		}
		if err := run.RepairCheckpoints(st.BestEpoch); err != nil {
			return fail(err)
		}
	} else {
		cfg.Created = time.Now().UTC()
		if run, err = run.Create(cfg); err != nil {
			if errors.Is(err, runs.ErrExists) {
				return fail(fmt.Errorf("%s already holds a run: continue it with 'kfash-tf train --resume %s', or choose another --out", run.Dir, run.Dir))
			}
			return fail(err)
		}
		started = true
		if err := trainer.Initialize(); err != nil {
			return fail(err)
		}
	}
	if rep != nil {
		// The other tasks build their graphs from the chief's settings,
		// then take its variables and loop state.
		hello := clusterHello{Config: cfg, Run: run.Dir, Data: fingerprint(ds, cfg.Data)}
		if err := sendHello(rep, localSession(c, runs.SessionConfig{}), hello); err != nil {
			return err
		}
		if _, err := trainer.SyncStart(resume); err != nil {
			return clusterError(err, run.Dir)
		}
	}
	if devs, err := trainer.Sess.ListDevices(); err == nil {
		fmt.Fprintln(w, libraryLine(devs))
	}
	fmt.Fprintf(w, "training %s on %s: %d classes (%s), %d train / %d validation images, %s, %s lr %g, %d epochs → %s\n",
		cfg.Network, cfg.Data, len(cfg.Classes), strings.Join(cfg.Classes, ", "), trainLoader.Len(), valLoader.Len(),
		batchWords(cfg), cfg.Optimizer.Name, cfg.Schedule.Base, cfg.Epochs, run.Dir)

	// status.json tells a sweep or a report what became of the run.
	status := runs.Status{State: runs.StateRunning, Epochs: cfg.Epochs}
	if resume != nil {
		status.EpochsDone, status.BestEpoch = resume.Epoch, resume.BestEpoch
	}
	if err := run.WriteStatus(status); err != nil {
		return err
	}
	st, err := fitRun(c, w, trainer, tg, run, cfg, trainLoader, valLoader, resume)
	// status.json records the error as the command prints it.
	err = clusterError(inFlagTerms(graphs.StripTFHint(err)), run.Dir)
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
	case errors.Is(err, context.Canceled) && rep != nil:
		fmt.Fprintf(w, "run saved; continue it by starting every task again with --resume %s (and its --cluster, --task)\n", run.Dir)
		return cli.Exit("", 130)
	case errors.Is(err, context.Canceled):
		fmt.Fprintf(w, "run saved; continue it with: kfash-tf train --resume %s\n", run.Dir)
		return cli.Exit("", 130)
	case err != nil:
		return err
	}
	if err := dumpVariables(trainer, 0); err != nil {
		return err
	}
	if cfg.Patience > 0 && st.Epoch < cfg.Epochs {
		fmt.Fprintf(w, "early stop after epoch %d: no better %s for %d epochs\n", st.Epoch, cfg.Select, cfg.Patience)
	}
	fmt.Fprintf(w, "done: best epoch %d (%s %.4f); %d unreadable files skipped; run folder %s\n", st.BestEpoch, cfg.Select, st.Best, *skips, run.Dir)
	return nil
}

// batchWords is the batch of the start line: "batch 32", or on a cluster
// "batch 16 × 2 tasks = 32 per step".
func batchWords(cfg runs.Config) string {
	if cfg.Tasks < 2 {
		return fmt.Sprintf("batch %d", cfg.BatchSize)
	}
	scaled := ""
	if cfg.LRScale == settings.LRScaleLinear {
		scaled = ", lr scaled linearly"
	}
	return fmt.Sprintf("batch %d × %d tasks = %d per step%s", cfg.BatchSize, cfg.Tasks, cfg.GlobalBatchSize, scaled)
}

// newLoaders returns the training and validation loaders of cfg over ds;
// on a cluster (r not nil), this task's shards, the training one dropping
// the last short global batch so that every task takes the same steps.
func newLoaders(c *cli.Context, cfg runs.Config, ds *augment.Dataset, r *graphs.Replica, onSkip func(augment.SkipReport)) (train, val *augment.Loader, err error) {
	trainSamples, _ := ds.Split("train")
	valSamples, _ := ds.Split("validation")
	cacheBudget := int64(c.Int("cache-mb")) << 20
	tc := augment.LoaderConfig{
		Size: cfg.InputSize, BatchSize: cfg.BatchSize, Shuffle: true, Augment: augment.Mode(cfg.Augment), Seed: cfg.Seed,
		Workers: cfg.Workers, Prefetch: c.Int("prefetch"), Cache: cacheBudget > 0, CacheBudgetBytes: cacheBudget, OnSkip: onSkip}
	vc := augment.LoaderConfig{
		Size: cfg.InputSize, BatchSize: cfg.BatchSize, Workers: cfg.Workers, Prefetch: c.Int("prefetch"),
		Cache: cacheBudget > 0, CacheBudgetBytes: cacheBudget, OnSkip: onSkip}
	if r != nil {
		shard := augment.Shard{Index: r.Cluster.Task, Count: r.Cluster.Size()}
		tc.Shard, vc.Shard, tc.DropLast = shard, shard, true
	}
	if train, err = augment.NewLoader(trainSamples, tc); err != nil {
		return nil, nil, err
	}
	if val, err = augment.NewLoader(valSamples, vc); err != nil {
		return nil, nil, err
	}
	return train, val, nil
}

// newTrainer builds the one-process training graph of cfg and its trainer.
func newTrainer(spec models.Spec, cfg runs.Config) (*graphs.Trainer, error) {
	tg, err := graphs.BuildTrainGraph(modelConfig(spec, cfg))
	if err != nil {
		return nil, err
	}
	trainer, err := graphs.NewTrainer(tg, cfg.InputSize, cfg.Session)
	if err != nil {
		return nil, inFlagTerms(err)
	}
	return trainer, nil
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
	ds, err := openTrainingData(cfg.Data, settings.SplitList(c.String("classes")))
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

// runConfigFromFlags applies the settings table (package settings): every
// flag the user set, else the recipe's value, else the flag's default.
func runConfigFromFlags(c *cli.Context, spec models.Spec, version string) (runs.Config, error) {
	cfg := runs.Config{
		Network: spec.Name, InputSize: spec.InputSize,
		Dropout:    spec.Recipe.Dropout, // the network's own unless --dropout is given
		TensorFlow: tf.Version(), Program: version,
	}
	recipe, err := settings.Recipe(c.String("recipe"), spec.Entry)
	if err != nil {
		return cfg, err
	}
	for _, s := range settings.All() {
		if s.Apply == nil {
			continue
		}
		v, fromRecipe := recipe[s.Name]
		if !fromRecipe || c.IsSet(s.Name) {
			v = s.Get(c)
		}
		s.Apply(&cfg, v)
	}
	if cfg.Dropout < 0 || cfg.Dropout >= 1 {
		return cfg, fmt.Errorf("--dropout %v must be in [0, 1)", cfg.Dropout)
	}
	if cfg.Epochs < 1 || cfg.BatchSize < 1 {
		return cfg, fmt.Errorf("--epochs and --batch-size must be at least 1")
	}
	if _, err := tfops.ParseInitScheme(cfg.Init); err != nil {
		return cfg, fmt.Errorf("--init: %w", err)
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
		Seed: cfg.Seed, Init: tfops.InitScheme(cfg.Init), Optimizer: cfg.Optimizer,
	}
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
