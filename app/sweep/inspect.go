package sweep

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/kfash-tf/kfash-tf/app/settings"
	"github.com/kfash-tf/kfash-tf/graphs/runs"
)

// Actions the sweep takes for a run, from its folder's state.
const (
	actNew     = "new"     // no run folder yet
	actResume  = "resume"  // interrupted, killed or failed with a checkpoint: train --resume
	actExtend  = "extend"  // finished, but the plan asks more epochs: train --resume --epochs N
	actRestart = "restart" // begun but without a checkpoint: its files are removed, then a new run
	actSkip    = "skip"    // finished
	actRefuse  = "refuse"  // the folder is not this run: left alone, the run counts as failed
)

// runState is what the sweep finds in a run's folder and will do about it.
type runState struct {
	action string
	dir    string
	status runs.Status
	cfg    runs.Config
	reason string // why a run is refused or restarted
}

// describe says what the sweep finds and does, for the progress lines and
// a dry run.
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
func inspectRun(s setup, r plannedRun) runState {
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

// refuse returns st as a refused run, for reason.
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
func checkRunMatches(cfg runs.Config, r plannedRun, s setup) error {
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
		def, _ := settings.Lookup(set.Flag)
		if def.Recorded == nil {
			continue // not recorded, or not comparable (epochs, workers)
		}
		got := def.Recorded(cfg)
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
