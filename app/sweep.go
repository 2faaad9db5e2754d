package app

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/kfash-tf/kfash-tf/graphs/runs"
	"github.com/kfash-tf/kfash-tf/internal/atomicfile"
)

// sweepPending is the state in sweep.json of a run without a folder yet;
// the others are its folder's status.json states (runs.State*).
const sweepPending = "pending"

// Actions the sweep takes for a run, from its folder's state.
const (
	actNew     = "new"     // no run folder yet
	actResume  = "resume"  // interrupted, killed or failed with a checkpoint: train --resume
	actExtend  = "extend"  // finished, but the plan asks more epochs: train --resume --epochs N
	actRestart = "restart" // begun but without a checkpoint: its files are removed, then a new run
	actSkip    = "skip"    // finished
	actRefuse  = "refuse"  // the folder is not this run: left alone, the run counts as failed
)

func sweepCommand() *cli.Command {
	return &cli.Command{
		Name:  "sweep",
		Usage: "train a list or grid of runs one after another, resumably",
		Description: "Runs every run of a plan (networks × hyperparameters), one after another, each in\n" +
			"its own folder OUT/NAME named from its settings (alexnet-b128-adam-lr1e-4-wd1e-3-do0.8).\n" +
			"Each run is a 'kfash-tf train' child process: a crash or out-of-memory in one run\n" +
			"does not stop the others.\n\n" +
			"Run the same command again to continue: finished runs are skipped, interrupted or\n" +
			"killed runs resume from their last checkpoint, failed runs are tried again, and a\n" +
			"finished run is extended when --epochs asks for more. Ctrl-C lets the current run\n" +
			"save its checkpoint, then stops the sweep. OUT/sweep.json records the plan and what\n" +
			"became of every run; 'kfash-tf report OUT' compares them.\n\n" +
			"The plan file (YAML; keys are train flag names without dashes):\n" +
			"  data: photos/                 # optional; --data overrides\n" +
			"  classes: [resort, retro, sporty]\n" +
			"  defaults: {epochs: 30, augment: double}\n" +
			"  runs:                         # a list value makes a grid\n" +
			"    - {network: alexnet, batch-size: 128, optimizer: adam, lr: 1e-4, weight-decay: [1e-4, 1e-3]}\n" +
			"    - {network: [vgg8, vgg10], optimizer: adamw}\n\n" +
			"Examples:\n" +
			"  kfash-tf sweep --preset seed --data kfashion/ --dry-run     # the study's nine runs, listed\n" +
			"  kfash-tf sweep --preset seed --data kfashion/               # ... trained, 100 epochs each\n" +
			"  kfash-tf sweep --preset seed --data photos/ --classes t-shirt,pants,shoes --epochs 1   # a quick pass\n" +
			"  kfash-tf sweep --plan grid.yaml --data photos/ --out runs/grid\n" +
			"  kfash-tf report runs/seed --out runs/seed/report",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "plan", Usage: "plan file (YAML): the runs, see above"},
			&cli.StringFlag{Name: "preset", Usage: "a built-in plan: 'seed' (the study's nine runs, 100 epochs, doubling augmentation)"},
			&cli.StringFlag{Name: "data", Usage: "dataset folder (overrides the plan's data:)"},
			&cli.StringFlag{Name: "classes", Usage: "comma-separated classes (overrides the plan's classes:)"},
			&cli.IntFlag{Name: "epochs", DefaultText: "the plan's", Usage: "epochs of every run (overrides the plan; e.g. 1 for a quick pass)"},
			&cli.StringFlag{Name: "out", Usage: "sweep folder holding the run folders and sweep.json (default runs/PLAN, runs/seed for the preset)"},
			&cli.BoolFlag{Name: "dry-run", Usage: "print the runs and what would be done for each, and exit"},
		},
		Action: runSweep,
	}
}

// sweepSetup is a sweep resolved from its flags and plan.
type sweepSetup struct {
	source  string // the plan file, or "preset NAME"
	out     string
	data    string
	classes []string // resolved from the dataset
	runs    []sweepRun
	epochs  int // the --epochs override, 0 if none
}

func runSweep(c *cli.Context) error {
	if c.Args().Len() > 0 {
		return fmt.Errorf("sweep takes no arguments (got %q): give --plan FILE or --preset seed", c.Args().First())
	}
	s, err := resolveSweep(c)
	if err != nil {
		return err
	}
	w := c.App.ErrWriter
	states := make([]runState, len(s.runs))
	for i, r := range s.runs {
		states[i] = inspectRun(s, r)
	}
	if c.Bool("dry-run") {
		printSweepPlan(c.App.Writer, s, states)
		return nil
	}
	if err := os.MkdirAll(s.out, 0o755); err != nil {
		return err
	}
	unlock, err := lockSweep(s.out)
	if err != nil {
		return err
	}
	defer unlock()
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("cannot find the kfash-tf program to run the training: %w", err)
	}

	sw := newSweeper(s, exe, w)
	sw.record = newSweepRecord(s, states, readSweepFile(s.out))
	if err := sw.save(); err != nil {
		return err
	}
	stop := sw.forwardSignals()
	defer stop()
	fmt.Fprintf(w, "sweep of %d runs into %s (%s)\n", len(s.runs), s.out, s.source)
	for i, r := range s.runs {
		if sw.interrupted() {
			break
		}
		st := inspectRun(s, r) // again: the folder may have changed since the plan was made
		if st.action == actSkip {
			fmt.Fprintf(w, "[%d/%d] skip %s: finished (%d epochs)\n", i+1, len(s.runs), r.Name, st.status.EpochsDone)
		} else {
			fmt.Fprintf(w, "\n[%d/%d] %s: %s\n", i+1, len(s.runs), r.Name, st.describe())
		}
		if err := sw.do(i, r, st); err != nil {
			return err
		}
	}
	return sw.finish(c.App.Writer)
}

// resolveSweep reads the plan (or preset), applies the command-line
// overrides and checks the dataset once for every run.
func resolveSweep(c *cli.Context) (sweepSetup, error) {
	var s sweepSetup
	planFile, preset := c.String("plan"), c.String("preset")
	var src []byte
	var base string
	switch {
	case planFile != "" && preset != "":
		return s, fmt.Errorf("give --plan FILE or --preset NAME, not both")
	case planFile != "":
		var err error
		if src, err = os.ReadFile(planFile); err != nil {
			return s, fmt.Errorf("cannot read the plan: %w", err)
		}
		s.source = planFile
		base = strings.TrimSuffix(filepath.Base(planFile), filepath.Ext(planFile))
	case preset != "":
		p, ok := sweepPresets()[preset]
		if !ok {
			return s, fmt.Errorf("unknown --preset %q: the only preset is 'seed' (the study's nine runs)", preset)
		}
		src, s.source, base = []byte(p), "preset "+preset, preset
	default:
		return s, fmt.Errorf("sweep needs --plan FILE (see 'kfash-tf sweep --help') or --preset seed")
	}
	plan, err := parsePlan(src, s.source)
	if err != nil {
		return s, err
	}
	if c.IsSet("epochs") {
		if s.epochs = c.Int("epochs"); s.epochs < 1 {
			return s, fmt.Errorf("--epochs must be at least 1")
		}
	}
	if s.runs, err = plan.expand(sweepOverrides{Epochs: s.epochs}); err != nil {
		return s, err
	}
	s.data, s.classes = plan.Data, plan.Classes
	if c.IsSet("data") {
		s.data = c.String("data")
	}
	if c.IsSet("classes") {
		s.classes = splitList(c.String("classes"))
	}
	if s.data == "" {
		return s, fmt.Errorf("sweep needs --data DIR (or data: in the plan): a folder with Train/ and Validation/ of class folders")
	}
	ds, err := openTrainingData(s.data, s.classes)
	if err != nil {
		return s, err
	}
	s.classes = ds.Classes
	if s.out = c.String("out"); s.out == "" {
		s.out = filepath.Join("runs", base)
	}
	return s, nil
}

// runState is what the sweep finds in a run's folder and will do about it.
type runState struct {
	action string
	dir    string
	status runs.Status
	cfg    runs.Config
	reason string // why a run is refused or restarted
}

func (st runState) describe() string {
	switch st.action {
	case actNew:
		return "new run"
	case actSkip:
		return fmt.Sprintf("finished (%d epochs), skipped", st.status.EpochsDone)
	case actResume:
		return fmt.Sprintf("%s after %d of %d epochs, resuming", st.status.State, st.status.EpochsDone, st.cfg.Epochs)
	case actExtend:
		return fmt.Sprintf("finished after %d epochs, extending", st.status.EpochsDone)
	case actRestart:
		return "starting over: " + st.reason
	}
	return "refused: " + st.reason
}

// inspectRun decides what to do with run r from its folder.
func inspectRun(s sweepSetup, r sweepRun) runState {
	st := runState{dir: filepath.Join(s.out, r.Name)}
	info, err := os.Stat(st.dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		st.action = actNew
		return st
	case err != nil:
		return st.refuse(err.Error())
	case !info.IsDir():
		return st.refuse(st.dir + " exists and is not a folder")
	}
	run, cfg, err := runs.Open(st.dir)
	if err != nil {
		if _, statErr := os.Stat(filepath.Join(st.dir, "config.json")); statErr == nil {
			return st.refuse(err.Error())
		}
		if emptyRunDir(st.dir) {
			st.action = actNew
			return st
		}
		return st.refuse(st.dir + " holds files but no run (no config.json): move them away or choose another --out")
	}
	st.cfg = cfg
	if err := checkRunMatches(cfg, r, s); err != nil {
		return st.refuse(fmt.Sprintf("%s was made with other settings (%v): move it away or choose another --out", st.dir, err))
	}
	if st.status, err = run.ReadStatus(); err != nil {
		st.status.State = runs.StateUnknown
	}
	epochs := r.epochs()
	if st.status.State == runs.StateFinished {
		st.action = actSkip
		if epochs > cfg.Epochs {
			st.action = actExtend
		}
		return st
	}
	if _, err := run.ResolveCheckpoint("last"); err != nil {
		st.action, st.reason = actRestart, "no checkpoint to resume from"
		return st
	}
	st.action = actResume
	return st
}

func (st runState) refuse(reason string) runState {
	st.action, st.reason = actRefuse, reason
	return st
}

// emptyRunDir reports whether dir holds nothing but temporary files an
// interrupted atomic write may leave.
func emptyRunDir(dir string) bool {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	for _, e := range entries {
		if e.Name() == ".lock" { // a train's run lock, left by one that failed before writing
			continue
		}
		if !strings.HasPrefix(e.Name(), ".") || !strings.Contains(e.Name(), ".tmp-") {
			return false
		}
	}
	return true
}

// runFiles are the files train writes in a run folder before its first
// checkpoint: what a restart removes.
var runFiles = []string{"config.json", "status.json", "metrics.csv", "metrics.jsonl", "checkpoints"}

// checkRunMatches returns an error naming the first setting in which the
// run folder's config differs from the planned run: the sweep never
// resumes or skips a run that is not the one planned.
func checkRunMatches(cfg runs.Config, r sweepRun, s sweepSetup) error {
	if cfg.Network != r.Network {
		return fmt.Errorf("network %s, the plan says %s", cfg.Network, r.Network)
	}
	if strings.Join(cfg.Classes, ",") != strings.Join(s.classes, ",") {
		return fmt.Errorf("classes %s, the sweep's are %s", strings.Join(cfg.Classes, ","), strings.Join(s.classes, ","))
	}
	if !sameDir(cfg.Data, s.data) {
		return fmt.Errorf("data %s, the sweep's is %s", cfg.Data, s.data)
	}
	for _, set := range r.Settings {
		got, ok := configSetting(cfg, set.Flag)
		if !ok {
			continue // not recorded, or not comparable (epochs, workers)
		}
		want := set.Value
		if f, err := strconv.ParseFloat(want, 64); err == nil {
			if g, err := strconv.ParseFloat(got, 64); err == nil && closeTo(f, g) {
				continue
			}
		}
		if got != want {
			return fmt.Errorf("%s %s, the plan says %s", set.Flag, got, want)
		}
	}
	return nil
}

// configSetting returns a train flag's value as a run's config.json
// records it.
func configSetting(cfg runs.Config, flag string) (string, bool) {
	f := func(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
	switch flag {
	case "batch-size":
		return strconv.Itoa(cfg.BatchSize), true
	case "optimizer":
		return cfg.Optimizer.Name, true
	case "lr":
		return f(cfg.Schedule.Base), true
	case "weight-decay":
		return f(cfg.Optimizer.WeightDecay), true
	case "dropout":
		return f(float64(cfg.Dropout)), true
	case "label-smoothing":
		return f(float64(cfg.LabelSmoothing)), true
	case "augment":
		return cfg.Augment, true
	case "normalize":
		return cfg.Normalize, true
	case "schedule":
		return cfg.Schedule.Kind, true
	case "seed":
		return strconv.FormatInt(cfg.Seed, 10), true
	case "select":
		return cfg.Select, true
	case "recipe":
		return cfg.Recipe, true
	}
	return "", false
}

// closeTo compares settings stored as float32 (dropout) with their float64
// value in the plan.
func closeTo(a, b float64) bool {
	return a == b || math.Abs(a-b) <= 1e-6*math.Max(math.Abs(a), math.Abs(b))
}

// sameDir reports whether two paths name the same folder (or are equal).
func sameDir(a, b string) bool {
	if filepath.Clean(a) == filepath.Clean(b) {
		return true
	}
	ia, errA := os.Stat(a)
	ib, errB := os.Stat(b)
	return errA == nil && errB == nil && os.SameFile(ia, ib)
}

// lockSweep takes an exclusive lock on OUT/.sweep.lock, so that two sweeps
// never train the same run folder at once.
func lockSweep(out string) (unlock func(), err error) {
	path := filepath.Join(out, ".sweep.lock")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("another kfash-tf sweep is running in %s (%s is locked): wait for it or stop it first", out, path)
	}
	return func() { f.Close() }, nil
}

// sweepFile is OUT/sweep.json: the plan, expanded, and what became of each
// run, rewritten atomically after every change.
type sweepFile struct {
	Plan    string        `json:"plan"` // the plan file, or "preset seed"
	Data    string        `json:"data"`
	Classes []string      `json:"classes"`
	Epochs  int           `json:"epochs_override,omitempty"`
	State   string        `json:"state"` // running, finished, interrupted or failed
	Started time.Time     `json:"started"`
	Updated time.Time     `json:"updated"`
	Ended   *time.Time    `json:"ended,omitempty"`
	Runs    []sweepRecord `json:"runs"`
}

// sweepRecord is one run in sweep.json.
type sweepRecord struct {
	Name       string            `json:"name"` // its folder, inside the sweep folder
	Network    string            `json:"network"`
	Settings   map[string]string `json:"settings"` // train flags without dashes
	Epochs     int               `json:"epochs"`
	Args       []string          `json:"args"`   // the kfash-tf command of a fresh start
	State      string            `json:"state"`  // pending, running, finished, interrupted or failed
	Action     string            `json:"action"` // what the last sweep did: new, resume, extend, restart, skip, refuse
	EpochsDone int               `json:"epochs_done"`
	BestEpoch  int               `json:"best_epoch,omitempty"`
	BestValAcc *float64          `json:"best_val_acc,omitempty"`
	Started    *time.Time        `json:"started,omitempty"`
	Ended      *time.Time        `json:"ended,omitempty"`
	Error      string            `json:"error,omitempty"`
}

// readSweepFile returns the previous sweep.json of out, if any: the start
// and end times of runs it skips are kept from it.
func readSweepFile(out string) *sweepFile {
	data, err := os.ReadFile(filepath.Join(out, "sweep.json"))
	if err != nil {
		return nil
	}
	var f sweepFile
	if json.Unmarshal(data, &f) != nil {
		return nil
	}
	return &f
}

func newSweepRecord(s sweepSetup, states []runState, prev *sweepFile) *sweepFile {
	now := time.Now().UTC()
	f := &sweepFile{Plan: s.source, Data: s.data, Classes: s.classes, Epochs: s.epochs, State: runs.StateRunning, Started: now}
	old := map[string]sweepRecord{}
	if prev != nil {
		for _, r := range prev.Runs {
			old[r.Name] = r
		}
	}
	for i, r := range s.runs {
		rec := sweepRecord{Name: r.Name, Network: r.Network, Settings: map[string]string{}, Epochs: r.epochs(),
			Args: r.trainArgs(states[i].dir, s.data, s.classes), State: sweepPending}
		for _, set := range r.Settings {
			rec.Settings[set.Flag] = set.Value
		}
		if o, ok := old[r.Name]; ok {
			rec.Started, rec.Ended, rec.Action = o.Started, o.Ended, o.Action
		}
		if a := states[i].action; a != actNew && a != actRefuse {
			fillFromRun(&rec, states[i].dir) // so that sweep.json tells the truth before the sweep reaches it
		}
		f.Runs = append(f.Runs, rec)
	}
	return f
}

// sweeper runs a sweep's children one at a time and forwards signals to
// the current one.
type sweeper struct {
	s      sweepSetup
	exe    string
	w      io.Writer
	record *sweepFile

	mu          sync.Mutex
	child       *os.Process // the run in progress, nil between runs
	signaled    bool        // an interrupt arrived: start no further run
	interruptAt string      // the run the interrupt stopped
}

func newSweeper(s sweepSetup, exe string, w io.Writer) *sweeper {
	return &sweeper{s: s, exe: exe, w: w}
}

// forwardSignals catches SIGINT, SIGTERM and SIGHUP for the whole sweep:
// the current child gets SIGINT or SIGTERM (it saves its checkpoint and
// exits), and no further run starts. The child is in its own process group,
// so a Ctrl-C on the terminal reaches it once, through the sweep.
func (sw *sweeper) forwardSignals() (stop func()) {
	ch := make(chan os.Signal, 4)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case sig := <-ch:
				sw.mu.Lock()
				sw.signaled = true
				if sw.child != nil {
					fmt.Fprintf(sw.w, "\nsweep: %v: letting the current run save its checkpoint...\n", sig)
					sw.child.Signal(childSignal(sig))
				}
				sw.mu.Unlock()
			case <-done:
				return
			}
		}
	}()
	return func() {
		signal.Stop(ch)
		close(done)
	}
}

// childSignal is what a child gets for a signal to the sweep: train saves
// its run on SIGINT and SIGTERM.
func childSignal(sig os.Signal) os.Signal {
	if sig == os.Interrupt {
		return os.Interrupt
	}
	return syscall.SIGTERM
}

func (sw *sweeper) interrupted() bool {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	return sw.signaled
}

// do carries out the action for run i; errors are the sweep's own (writing
// sweep.json), a run's failure is recorded instead.
func (sw *sweeper) do(i int, r sweepRun, st runState) error {
	rec := &sw.record.Runs[i]
	rec.Action, rec.Error = st.action, ""
	var args []string
	switch st.action {
	case actSkip:
		fillFromRun(rec, st.dir)
		return sw.save()
	case actRefuse:
		fmt.Fprintf(sw.w, "%s: %s\n", r.Name, st.reason)
		rec.State, rec.Error = runs.StateFailed, st.reason
		return sw.save()
	case actResume, actExtend:
		args = r.resumeArgs(st.dir, st.cfg.Epochs)
	case actRestart:
		for _, f := range runFiles {
			if err := os.RemoveAll(filepath.Join(st.dir, f)); err != nil {
				rec.State, rec.Error = runs.StateFailed, fmt.Sprintf("cannot start %s over: %v", st.dir, err)
				return sw.save()
			}
		}
		args = rec.Args
	default:
		args = rec.Args
	}
	start := time.Now().UTC()
	rec.Started, rec.Ended, rec.State = &start, nil, runs.StateRunning
	if err := sw.save(); err != nil {
		return err
	}
	fmt.Fprintf(sw.w, "kfash-tf %s\n", shellJoin(args))
	res := sw.runChild(args)
	if !res.started && res.signaled {
		rec.State, rec.Started = sweepPending, nil
		return sw.save()
	}
	end := time.Now().UTC()
	rec.Ended = &end
	fillFromRun(rec, st.dir)
	switch {
	case res.err == nil:
		rec.State = runs.StateFinished
	case res.signaled && rec.State == runs.StateFinished:
		// Killed by the forwarded interrupt after it had written that it
		// finished: it did.
	case res.signaled || res.code == 130:
		rec.State = runs.StateInterrupted
		sw.mu.Lock()
		sw.signaled, sw.interruptAt = true, r.Name
		sw.mu.Unlock()
	default:
		rec.State, rec.Error = runs.StateFailed, res.failure(st.dir)
		fmt.Fprintf(sw.w, "failed %s (%v): %s\n", r.Name, res.err, lastLine(rec.Error))
	}
	return sw.save()
}

// childResult is how a child process ended.
type childResult struct {
	started  bool
	err      error // nil: exit status 0
	code     int   // exit status, -1 if killed by a signal
	signaled bool  // the sweep forwarded a signal while it ran
	tail     []string
}

// failure describes a failed child: the run's recorded error, else its
// last lines on stderr and how it ended.
func (r childResult) failure(dir string) string {
	if st, err := (runs.Run{Dir: dir}).ReadStatus(); err == nil && st.State == runs.StateFailed && st.Error != "" {
		return st.Error
	}
	return strings.Join(append(r.tail, "("+r.err.Error()+")"), "\n")
}

// runChild runs kfash-tf with args, streaming its output, and waits.
func (sw *sweeper) runChild(args []string) childResult {
	cmd := exec.Command(sw.exe, args...)
	tail := &tailWriter{w: sw.w, keep: 8}
	cmd.Stdout, cmd.Stderr = sw.w, tail
	// Its own process group: a terminal's Ctrl-C goes to the sweep only,
	// which forwards it exactly once.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	sw.mu.Lock()
	if sw.signaled {
		sw.mu.Unlock()
		return childResult{err: errors.New("not started: the sweep was interrupted"), code: -1, signaled: true}
	}
	if err := cmd.Start(); err != nil {
		sw.mu.Unlock()
		return childResult{err: err, code: -1, tail: []string{err.Error()}}
	}
	sw.child = cmd.Process
	sw.mu.Unlock()

	err := cmd.Wait()
	sw.mu.Lock()
	sw.child = nil
	signaled := sw.signaled
	sw.mu.Unlock()
	res := childResult{started: true, err: err, signaled: signaled, tail: tail.lines()}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		res.code = ee.ExitCode()
	}
	return res
}

// fillFromRun copies a run folder's status and best epoch into rec.
func fillFromRun(rec *sweepRecord, dir string) {
	run := runs.Run{Dir: dir}
	if st, err := run.ReadStatus(); err == nil && st.State != runs.StateUnknown {
		rec.State, rec.EpochsDone, rec.BestEpoch = st.State, st.EpochsDone, st.BestEpoch
		if st.Epochs > 0 {
			rec.Epochs = st.Epochs
		}
		if st.State == runs.StateFailed && rec.Error == "" {
			rec.Error = st.Error
		}
	}
	rec.BestValAcc = nil
	if best, ok := bestEpoch(run); ok {
		rec.BestEpoch = best.Epoch
		// metrics.jsonl keeps a diverged epoch's NaN, which sweep.json
		// (plain JSON) cannot: no accuracy then.
		if acc := best.ValAcc; !math.IsNaN(acc) && !math.IsInf(acc, 0) {
			rec.BestValAcc = &acc
		}
	}
}

// bestEpoch returns the metrics row of the run's best checkpoint (by its
// --select rule): the last row marked best.
func bestEpoch(run runs.Run) (runs.EpochResult, bool) {
	rows, err := run.ReadMetrics()
	if err != nil {
		return runs.EpochResult{}, false
	}
	var best runs.EpochResult
	found := false
	for _, r := range rows {
		if r.Best {
			best, found = r, true
		}
	}
	return best, found
}

func (sw *sweeper) save() error {
	sw.record.Updated = time.Now().UTC()
	data, err := json.MarshalIndent(sw.record, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(sw.s.out, "sweep.json"), append(data, '\n'))
}

// finish records the sweep's end, prints the summary and the next step,
// and returns the sweep's outcome: 130 after an interrupt, an error naming
// the failed runs.
func (sw *sweeper) finish(stdout io.Writer) error {
	end := time.Now().UTC()
	var failed []string
	for _, r := range sw.record.Runs {
		if r.State == runs.StateFailed {
			failed = append(failed, r.Name)
		}
	}
	interrupted := sw.interrupted()
	switch {
	case interrupted:
		sw.record.State = runs.StateInterrupted
	case len(failed) > 0:
		sw.record.State, sw.record.Ended = runs.StateFailed, &end
	default:
		sw.record.State, sw.record.Ended = runs.StateFinished, &end
	}
	if err := sw.save(); err != nil {
		return err
	}
	fmt.Fprintln(sw.w)
	printSweepSummary(stdout, sw.record)
	again := "kfash-tf " + shellJoin(os.Args[1:])
	if interrupted {
		where := ""
		if sw.interruptAt != "" {
			where = " during " + sw.interruptAt
		}
		fmt.Fprintf(sw.w, "sweep interrupted%s; continue it with the same command:\n  %s\n", where, again)
		return cli.Exit("", 130)
	}
	fmt.Fprintf(sw.w, "compare the runs: kfash-tf report %s --out %s\n", sw.s.out, filepath.Join(sw.s.out, "report"))
	if len(failed) > 0 {
		return fmt.Errorf("%d of %d runs failed: %s (errors in %s); run the same command again to retry them",
			len(failed), len(sw.record.Runs), strings.Join(failed, ", "), filepath.Join(sw.s.out, "sweep.json"))
	}
	return nil
}

// printSweepSummary prints one line per run: state, epochs, best epoch.
func printSweepSummary(w io.Writer, f *sweepFile) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "run\tstate\tepochs\tbest val acc (epoch)\ttime")
	for _, r := range f.Runs {
		best := "-"
		if r.BestValAcc != nil {
			best = fmt.Sprintf("%.4f (%d)", *r.BestValAcc, r.BestEpoch)
		}
		took := "-"
		if r.Started != nil && r.Ended != nil && r.Action != actSkip {
			took = r.Ended.Sub(*r.Started).Round(time.Second).String()
		}
		fmt.Fprintf(tw, "%s\t%s\t%d/%d\t%s\t%s\n", r.Name, r.State, r.EpochsDone, r.Epochs, best, took)
	}
	tw.Flush()
}

// printSweepPlan prints the runs of a --dry-run and what would be done.
func printSweepPlan(w io.Writer, s sweepSetup, states []runState) {
	fmt.Fprintf(w, "%s: %d runs into %s, data %s, classes %s\n", s.source, len(s.runs), s.out, s.data, strings.Join(s.classes, ","))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "#\trun\tnetwork\tepochs\tsettings\tstate")
	for i, r := range s.runs {
		var set []string
		for _, x := range r.Settings {
			if x.Flag != "epochs" {
				set = append(set, x.Flag+"="+x.Value)
			}
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%s\t%s\n", i+1, r.Name, r.Network, r.epochs(), strings.Join(set, " "), states[i].describe())
	}
	tw.Flush()
}

// tailWriter passes output through and keeps its last lines.
type tailWriter struct {
	w       io.Writer
	keep    int
	mu      sync.Mutex
	partial []byte
	last    []string
}

func (t *tailWriter) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.partial = append(t.partial, p...)
	for {
		i := strings.IndexAny(string(t.partial), "\n\r")
		if i < 0 {
			break
		}
		if line := strings.TrimSpace(string(t.partial[:i])); line != "" {
			t.last = append(t.last, line)
			if len(t.last) > t.keep {
				t.last = t.last[len(t.last)-t.keep:]
			}
		}
		t.partial = t.partial[i+1:]
	}
	return t.w.Write(p)
}

func (t *tailWriter) lines() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := append([]string(nil), t.last...)
	if line := strings.TrimSpace(string(t.partial)); line != "" {
		out = append(out, line)
	}
	return out
}

// lastLine returns the last line of s that is not the exit status added
// by childResult.failure.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	for i := len(lines) - 1; i > 0; i-- {
		if !strings.HasPrefix(lines[i], "(") {
			return lines[i]
		}
	}
	return lines[0]
}

// shellJoin quotes args for a shell where needed.
func shellJoin(args []string) string {
	out := make([]string, len(args))
	for i, a := range args {
		if a != "" && strings.IndexFunc(a, func(r rune) bool {
			return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./=,:+@", r))
		}) < 0 {
			out[i] = a
			continue
		}
		out[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	return strings.Join(out, " ")
}
