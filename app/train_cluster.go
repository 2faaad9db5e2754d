package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/kfash-tf/kfash-tf/app/settings"
	"github.com/kfash-tf/kfash-tf/augment"
	"github.com/kfash-tf/kfash-tf/graphs"
	"github.com/kfash-tf/kfash-tf/graphs/runs"
	"github.com/kfash-tf/kfash-tf/models"
	"github.com/kfash-tf/kfash-tf/tfops"
)

// `train` on several processes: synchronous data-parallel training (see
// graphs/collective.go for what the tasks exchange).
//
// Every task runs the same command line with its own --task (or TF_CONFIG).
// Task 0, the chief, resolves the run as a single `train` does (flags, or
// --resume RUN's config.json and checkpoint), writes the run folder alone,
// and at the start sends the other tasks its configuration, its run
// folder's path and a fingerprint of its dataset, then its variables and
// loop state. The other tasks therefore need neither the run folder nor the
// same flags as the chief to resume (only --data's folder at the path the
// chief's config records, with the same files): they check their own flags
// (a typo fails at once), then take the chief's settings, keeping their own
// --workers, --prefetch, --cache-mb and thread counts, which are about
// their machine. They write nothing to disk.
//
// A task that fails ends the run: any collective error is fatal in
// TensorFlow. Recovery is to restart every task with --resume RUN; the
// chief continues from its last checkpoint. Every task must take the same
// number of steps: the training shards drop the last short global batch,
// but a batch whose every image is unreadable is not sent at all, and the
// other tasks then wait for that task until --collective-timeout (check a
// dataset with 'kfash-tf data stats' first).

// clusterEnv is the environment variable read for the cluster when
// --cluster is not given: MultiWorkerMirroredStrategy's and Kubeflow
// TFJob's convention.
const clusterEnv = "TF_CONFIG"

// clusterFromFlags returns the cluster that --cluster and --task, else
// TF_CONFIG (tfConfig, its value), describe; nil for a run of one process
// (no cluster, or a cluster of one task). Flags win over TF_CONFIG, item by
// item.
func clusterFromFlags(c *cli.Context, tfConfig string) (*graphs.Cluster, error) {
	var env graphs.TFConfig
	if tfConfig != "" {
		var err error
		if env, err = graphs.ParseTFConfig(tfConfig); err != nil {
			return nil, fmt.Errorf("%s: %v", clusterEnv, err)
		}
	}
	cl := graphs.Cluster{Workers: env.Workers, Task: env.Task}
	from := clusterEnv
	if c.IsSet("cluster") {
		cl.Workers, from = graphs.ParseWorkers(c.String("cluster")), "--cluster"
		if len(cl.Workers) == 0 {
			return nil, errors.New("--cluster: no address (want host:port,host:port,…)")
		}
	}
	hasTask := env.HasTask
	if c.IsSet("task") {
		cl.Task, hasTask = c.Int("task"), true
	}
	switch {
	case len(cl.Workers) == 0 && c.IsSet("task"):
		return nil, fmt.Errorf("--task %d needs --cluster (or %s): the address of every task", cl.Task, clusterEnv)
	case len(cl.Workers) == 0:
		return nil, nil
	case !hasTask && from == "--cluster":
		return nil, errors.New("--cluster needs --task N: this process's index in the list (0 is the chief)")
	case !hasTask:
		return nil, fmt.Errorf("%s has a cluster but no task: add --task N", clusterEnv)
	}
	if cl.Task >= len(cl.Workers) {
		return nil, fmt.Errorf("--task %d: the cluster (%s) has %d tasks, 0 … %d", cl.Task, from, len(cl.Workers), len(cl.Workers)-1)
	}
	if err := cl.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %v", from, err)
	}
	if cl.Size() == 1 {
		return nil, nil // one task: the one-process run, with no server
	}
	return &cl, nil
}

// clusterSettings reads --collective-timeout and --lr-scale, checked on
// every train so that a typo never waits for a cluster run to show.
func clusterSettings(c *cli.Context) (timeout time.Duration, lrScale string, err error) {
	timeout, err = time.ParseDuration(c.String("collective-timeout"))
	if err != nil || timeout <= 0 {
		return 0, "", fmt.Errorf("--collective-timeout %q: want a positive duration such as 90s or 5m", c.String("collective-timeout"))
	}
	switch lrScale = c.String("lr-scale"); lrScale {
	case settings.LRScaleNone, settings.LRScaleLinear:
	default:
		return 0, "", fmt.Errorf("unknown --lr-scale %q: use %s or %s", lrScale, settings.LRScaleNone, settings.LRScaleLinear)
	}
	return timeout, lrScale, nil
}

// startReplica starts this task's TensorFlow server.
func startReplica(c *cli.Context, cl graphs.Cluster, timeout time.Duration) (*graphs.Replica, error) {
	r, err := graphs.StartReplica(cl, timeout, localSession(c, runs.SessionConfig{}))
	if errors.Is(err, tfops.ErrPortInUse) {
		return nil, &flagWorded{err: err, msg: fmt.Sprintf("task %d: %v: give every task a free port in --cluster (or %s)", cl.Task, err, clusterEnv)}
	}
	if err != nil {
		return nil, fmt.Errorf("task %d: %w", cl.Task, err)
	}
	return r, nil
}

// localSession returns sc with the thread counts and device set on this
// task's command line: they are about its machine.
func localSession(c *cli.Context, sc runs.SessionConfig) runs.SessionConfig {
	if c.IsSet("intra-op-threads") {
		sc.IntraOpThreads = c.Int("intra-op-threads")
	}
	if c.IsSet("inter-op-threads") {
		sc.InterOpThreads = c.Int("inter-op-threads")
	}
	if c.IsSet("device") {
		sc.Device = c.String("device")
	}
	if c.IsSet("gpus") {
		sc.GPUs = c.String("gpus")
	}
	return sc
}

// joinCluster makes the chief's run configuration that of a cluster run:
// the number of tasks and global batch recorded, the learning rate scaled
// on a new run with --lr-scale linear. A resumed run must have as many
// tasks as it was trained with: its data order and steps per epoch (and so
// where an interrupted epoch stands) depend on it.
func joinCluster(ts *trainSetup, tasks int, lrScale string) error {
	if err := checkTasks(*ts, tasks); err != nil {
		return err
	}
	if ts.resumed || tasks < 2 {
		return nil
	}
	cfg := &ts.cfg
	cfg.Tasks, cfg.GlobalBatchSize = tasks, tasks*cfg.BatchSize
	if lrScale == settings.LRScaleLinear {
		cfg.Schedule.Base *= float64(tasks)
		cfg.LRScale = lrScale
	}
	return nil
}

// checkTasks refuses to resume a run with another number of tasks than it
// was trained with.
func checkTasks(ts trainSetup, tasks int) error {
	if !ts.resumed {
		return nil
	}
	was := max(1, ts.cfg.Tasks)
	if was == tasks {
		return nil
	}
	how := "without --cluster"
	if was > 1 {
		how = fmt.Sprintf("with --cluster of %d addresses", was)
	}
	return fmt.Errorf("%s was trained by %d task(s), this resume has %d: resume it %s (the data order and the steps of an epoch depend on the number of tasks)",
		ts.run.Dir, was, tasks, how)
}

// clusterHello is what the chief sends every other task at the start.
type clusterHello struct {
	// Error is the chief's error when it could not start: the others stop
	// with it rather than wait for a chief that is gone.
	Error  string      `json:"error,omitempty"`
	Config runs.Config `json:"config"`
	Run    string      `json:"run"` // the chief's run folder, for messages
	Data   dataPrint   `json:"data"`
}

// dataPrint identifies a dataset's training and validation splits: the
// number of files and a hash of their paths (relative to the dataset
// folder) and labels. Tasks whose datasets differ would not take the same
// steps per epoch, and wait for each other until the timeout.
type dataPrint struct {
	Train      int    `json:"train"`
	Validation int    `json:"validation"`
	Hash       uint64 `json:"hash"`
}

func fingerprint(ds *augment.Dataset, root string) dataPrint {
	h := fnv.New64a()
	var p dataPrint
	for _, split := range []string{"train", "validation"} {
		samples, _ := ds.Split(split)
		for _, s := range samples {
			rel, err := filepath.Rel(root, s.Path)
			if err != nil {
				rel = s.Path
			}
			fmt.Fprintf(h, "%s\x00%s\x00%d\n", split, filepath.ToSlash(rel), s.Label)
		}
		if split == "train" {
			p.Train = len(samples)
		} else {
			p.Validation = len(samples)
		}
	}
	p.Hash = h.Sum64()
	return p
}

// sendHello is the chief's side of the start: its configuration, or the
// error that stops it.
func sendHello(r *graphs.Replica, sc runs.SessionConfig, hello clusterHello) error {
	data, err := json.Marshal(hello)
	if err != nil {
		return err
	}
	if _, err := r.BroadcastBytes(data, sc); err != nil {
		return clusterError(fmt.Errorf("starting the cluster: %w", err), hello.Run)
	}
	return nil
}

// chiefFailed tells the other tasks that the chief cannot start (err), and
// returns err. A failure to tell them is left out: they stop at their
// timeout.
func chiefFailed(r *graphs.Replica, sc runs.SessionConfig, err error) error {
	if r != nil && err != nil {
		sendHello(r, sc, clusterHello{Error: inFlagTerms(err).Error()})
	}
	return err
}

// runFollower is `train` on a task other than the chief.
func runFollower(c *cli.Context, r *graphs.Replica) error {
	w := c.App.ErrWriter
	if err := checkFollowerFlags(c); err != nil {
		return err
	}
	fmt.Fprintf(w, "task %d of %d (%s): waiting for the chief (%s), up to --collective-timeout %v\n",
		r.Cluster.Task, r.Cluster.Size(), r.Cluster.Workers[r.Cluster.Task], r.Cluster.Workers[0], r.Timeout)
	sc := localSession(c, runs.SessionConfig{})
	data, err := r.BroadcastBytes(nil, sc)
	if err != nil {
		return clusterError(fmt.Errorf("starting the cluster: %w", err), "")
	}
	var hello clusterHello
	if err := json.Unmarshal(data, &hello); err != nil {
		return fmt.Errorf("the chief's start message: %w", err)
	}
	if hello.Error != "" {
		return fmt.Errorf("the chief (task 0, %s) could not start: %s", r.Cluster.Workers[0], hello.Error)
	}
	cfg := hello.Config
	cfg.Workers = c.Int("workers")
	cfg.Session = localSession(c, cfg.Session)
	ds, err := openTrainingData(cfg.Data, cfg.Classes)
	if err != nil {
		return fmt.Errorf("the chief's dataset %s: %w", cfg.Data, err)
	}
	if got := fingerprint(ds, cfg.Data); got != hello.Data {
		return fmt.Errorf("%s here is not the chief's dataset (%d train and %d validation files here, %d and %d there, or other names): every task needs the same files",
			cfg.Data, got.Train, got.Validation, hello.Data.Train, hello.Data.Validation)
	}
	onSkip := func(rep augment.SkipReport) { fmt.Fprintf(w, "skipping %s\n", rep) }
	trainLoader, valLoader, err := newLoaders(c, cfg, ds, r, onSkip)
	if err != nil {
		return err
	}
	cfg.Schedule.Epochs, cfg.Schedule.StepsPerEpoch = cfg.Epochs, trainLoader.Steps()
	spec, err := models.Get(cfg.Network)
	if err != nil {
		return err
	}
	trainer, err := newClusterTrainer(spec, cfg, r)
	if err != nil {
		return err
	}
	defer trainer.Close()
	resume, err := trainer.SyncStart(nil)
	if err != nil {
		return clusterError(err, hello.Run)
	}
	fmt.Fprintf(w, "task %d of %d: training %s with the chief's run %s, batch %d of %d per step\n",
		r.Cluster.Task, r.Cluster.Size(), cfg.Network, hello.Run, cfg.BatchSize, cfg.GlobalBatchSize)

	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()
	prog := newProgress(w, cfg.Epochs)
	hooks := graphs.Hooks{OnEpoch: func(res runs.EpochResult, _ runs.LoopState) error {
		prog.epoch(res)
		return nil
	}}
	loopCfg := graphs.LoopConfig{Epochs: cfg.Epochs, Patience: cfg.Patience, Select: cfg.Select, Schedule: cfg.Schedule, Resume: resume}
	_, err = trainer.Fit(ctx, trainLoader, valLoader, len(cfg.Classes), loopCfg, hooks)
	switch {
	case errors.Is(err, context.Canceled):
		fmt.Fprintf(w, "task %d: stopped with the cluster; the chief saved the run: continue with every task's command and --resume %s\n", r.Cluster.Task, hello.Run)
		return cli.Exit("", 130)
	case err != nil:
		return clusterError(inFlagTerms(graphs.StripTFHint(err)), hello.Run)
	}
	if err := dumpVariables(trainer, r.Cluster.Task); err != nil {
		return err
	}
	fmt.Fprintf(w, "task %d: done\n", r.Cluster.Task)
	return nil
}

// checkFollowerFlags checks a non-chief task's own train flags as the
// chief checks its, so that a mistake on the shared command line fails
// here at once; their values are then the chief's. A --resume RUN that
// this machine lacks is no error: the chief holds the run.
func checkFollowerFlags(c *cli.Context) error {
	if _, err := resumeFrom(c); err != nil {
		return err
	}
	if dir := c.String("resume"); dir != "" {
		if c.Args().Len() > 0 {
			return fmt.Errorf("--resume takes the network from %s/config.json: drop the NETWORK argument", dir)
		}
		return nil
	}
	if c.Args().Len() != 1 {
		return fmt.Errorf("train needs one network and --data DIR; or --resume RUN")
	}
	spec, err := models.Get(c.Args().First())
	if err != nil {
		return err
	}
	if c.String("data") == "" {
		return fmt.Errorf("train needs --data DIR: a folder with Train/ and Validation/ of class folders")
	}
	_, err = runConfigFromFlags(c, spec, "")
	return err
}

// newClusterTrainer builds a task's training graph and trainer.
func newClusterTrainer(spec models.Spec, cfg runs.Config, r *graphs.Replica) (*graphs.Trainer, error) {
	mc := modelConfig(spec, cfg)
	mc.Sync = &graphs.SyncConfig{Tasks: r.Cluster.Size(), Chief: r.Cluster.IsChief(), Timeout: r.Timeout}
	tg, err := graphs.BuildTrainGraph(mc)
	if err != nil {
		return nil, err
	}
	trainer, err := graphs.NewReplicaTrainer(tg, cfg.InputSize, cfg.Session, r)
	if err != nil {
		return nil, inFlagTerms(err)
	}
	return trainer, nil
}

// clusterError words a failed collective (*graphs.PeerError) for the user:
// which task, what happened, and that every task must be restarted with
// --resume (run: the chief's run folder, "" when not known yet).
func clusterError(err error, run string) error {
	var pe *graphs.PeerError
	if !errors.As(err, &pe) {
		return err
	}
	who := "a task"
	if pe.Task >= 0 {
		who = fmt.Sprintf("task %d (%s)", pe.Task, pe.Addr)
	}
	what := "is unreachable (stopped, killed or cut off)"
	if pe.TimedOut {
		what = fmt.Sprintf("did not answer within --collective-timeout %v (hung, or slower than that allows)", pe.Timeout)
	}
	resume := "RUN"
	if run != "" {
		resume = run
	}
	return &flagWorded{err: err, msg: fmt.Sprintf("%s %s: a cluster cannot go on without one of its tasks; "+
		"restart all tasks with --resume %s (the chief continues from its last checkpoint) [TensorFlow: %s]", who, what, resume, pe.Summary())}
}
