// Package sweep runs a sweep: the runs of a plan (networks ×
// hyperparameters, from a YAML file or a preset), one after another, each a
// `kfash-tf train` child process in its own run folder. A sweep resumes:
// run again, it skips finished runs, resumes interrupted ones and refuses
// folders that are not the run its plan asks for. OUT/sweep.json records
// the plan and what became of every run.
//
// The package is pure Go: it starts the training, it does not do it, so it
// builds without TensorFlow (CGO_ENABLED=0).
package sweep

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"

	"github.com/kfash-tf/kfash-tf/augment"
)

// Options is a sweep as its command gives it.
type Options struct {
	Plan   string // the plan file (YAML); or
	Preset string // a built-in plan: "seed"
	// Data replaces the plan's data: when not "". Classes replaces its
	// classes: when not nil; empty, it asks for every class folder.
	Data    string
	Classes []string
	Epochs  int    // > 0: every run's epochs, whatever the plan says
	Out     string // the sweep folder; "": runs/PLAN (runs/seed for the preset)
	DryRun  bool   // print the runs and what would be done for each, and stop

	// Program is the kfash-tf executable each run is a `train` child of;
	// "": this process's own.
	Program string
	// CommandLine is the sweep's arguments after the program name: the
	// command that continues the sweep, printed after an interrupt.
	CommandLine []string
	// Stdout gets the runs of a dry run and the summary; Stderr the
	// progress, and the output of the children.
	Stdout, Stderr io.Writer
}

// ErrInterrupted is Run's error after a signal stopped the sweep: the
// current run saved its checkpoint, and running the same command again
// continues. The message has been printed.
var ErrInterrupted = errors.New("sweep interrupted")

// setup is a sweep resolved from its options and plan.
type setup struct {
	source  string // the plan file, or "preset NAME"
	out     string
	data    string
	classes []string // resolved from the dataset
	runs    []plannedRun
	epochs  int // the --epochs override, 0 if none
}

// Run carries out the sweep o: every run of its plan in turn, each started,
// resumed, extended, skipped or refused from what its folder holds. Runs
// that fail do not stop the others: Run returns an error naming them at the
// end.
func Run(o Options) error {
	s, err := resolve(o)
	if err != nil {
		return err
	}
	w := o.Stderr
	states := make([]runState, len(s.runs))
	for i, r := range s.runs {
		states[i] = inspectRun(s, r)
	}
	if o.DryRun {
		printPlan(o.Stdout, s, states)
		return nil
	}
	if err := os.MkdirAll(s.out, 0o755); err != nil {
		return err
	}
	unlock, err := lockDir(s.out)
	if err != nil {
		return err
	}
	defer unlock()
	exe := o.Program
	if exe == "" {
		if exe, err = os.Executable(); err != nil {
			return fmt.Errorf("cannot find the kfash-tf program to run the training: %w", err)
		}
	}

	sw := newRunner(s, exe, w)
	sw.record = newRecord(s, states, readRecord(s.out))
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
	return sw.finish(o.Stdout, o.CommandLine)
}

// resolve reads the plan (or preset), applies the command-line overrides
// and checks the dataset once for every run.
func resolve(o Options) (setup, error) {
	var s setup
	var src []byte
	var base string
	switch {
	case o.Plan != "" && o.Preset != "":
		return s, fmt.Errorf("give --plan FILE or --preset NAME, not both")
	case o.Plan != "":
		var err error
		if src, err = os.ReadFile(o.Plan); err != nil {
			return s, fmt.Errorf("cannot read the plan: %w", err)
		}
		s.source = o.Plan
		base = strings.TrimSuffix(filepath.Base(o.Plan), filepath.Ext(o.Plan))
	case o.Preset != "":
		p, ok := presets()[o.Preset]
		if !ok {
			return s, fmt.Errorf("unknown --preset %q: the only preset is 'seed' (the study's nine runs)", o.Preset)
		}
		src, s.source, base = []byte(p), "preset "+o.Preset, o.Preset
	default:
		return s, fmt.Errorf("sweep needs --plan FILE (see 'kfash-tf sweep --help') or --preset seed")
	}
	p, err := parsePlan(src, s.source)
	if err != nil {
		return s, err
	}
	if s.epochs = o.Epochs; s.epochs < 0 {
		return s, fmt.Errorf("--epochs must be at least 1")
	}
	if s.runs, err = p.expand(overrides{Epochs: s.epochs}); err != nil {
		return s, err
	}
	s.data, s.classes = p.Data, p.Classes
	if o.Data != "" {
		s.data = o.Data
	}
	if o.Classes != nil {
		s.classes = o.Classes
	}
	if s.data == "" {
		return s, fmt.Errorf("sweep needs --data DIR (or data: in the plan): a folder with Train/ and Validation/ of class folders")
	}
	// As train opens it: the sweep stops here rather than in every run.
	ds, err := augment.Open(s.data, augment.OpenOptions{Classes: s.classes})
	if err != nil {
		return s, err
	}
	if err := ds.CheckTraining(); err != nil {
		return s, err
	}
	s.classes = ds.Classes
	if s.out = o.Out; s.out == "" {
		s.out = filepath.Join("runs", base)
	}
	return s, nil
}

// printPlan prints the runs of a dry run and what would be done.
func printPlan(w io.Writer, s setup, states []runState) {
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

// lockDir takes an exclusive lock on OUT/.sweep.lock, so that two sweeps
// never train the same run folder at once.
func lockDir(out string) (unlock func(), err error) {
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
