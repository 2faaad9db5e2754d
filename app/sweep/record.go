package sweep

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/kfash-tf/kfash-tf/graphs/runs"
	"github.com/kfash-tf/kfash-tf/internal/atomicfile"
)

// statePending is the state in sweep.json of a run without a folder yet;
// the others are its folder's status.json states (runs.State*).
const statePending = "pending"

// recordFile is OUT/sweep.json: the plan, expanded, and what became of each
// run, rewritten atomically after every change.
type recordFile struct {
	Plan    string      `json:"plan"` // the plan file, or "preset seed"
	Data    string      `json:"data"`
	Classes []string    `json:"classes"`
	Epochs  int         `json:"epochs_override,omitempty"`
	State   string      `json:"state"` // running, finished, interrupted or failed
	Started time.Time   `json:"started"`
	Updated time.Time   `json:"updated"`
	Ended   *time.Time  `json:"ended,omitempty"`
	Runs    []runRecord `json:"runs"`
}

// runRecord is one run in sweep.json.
type runRecord struct {
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

// readRecord returns the previous sweep.json of out, if any: the start
// and end times of runs it skips are kept from it.
func readRecord(out string) *recordFile {
	data, err := os.ReadFile(filepath.Join(out, "sweep.json"))
	if err != nil {
		return nil
	}
	var f recordFile
	if json.Unmarshal(data, &f) != nil {
		return nil
	}
	return &f
}

// newRecord is the record of a sweep starting: every run pending, except
// those whose folders already tell what became of them; prev is the last
// sweep's record, if any.
func newRecord(s setup, states []runState, prev *recordFile) *recordFile {
	now := time.Now().UTC()
	f := &recordFile{Plan: s.source, Data: s.data, Classes: s.classes, Epochs: s.epochs, State: runs.StateRunning, Started: now}
	old := map[string]runRecord{}
	if prev != nil {
		for _, r := range prev.Runs {
			old[r.Name] = r
		}
	}
	for i, r := range s.runs {
		rec := runRecord{Name: r.Name, Network: r.Network, Settings: map[string]string{}, Epochs: r.epochs(),
			Args: r.trainArgs(states[i].dir, s.data, s.classes), State: statePending}
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

// write replaces OUT/sweep.json with f, atomically: a reader sees the old
// record or the new one, never half of one.
func (f *recordFile) write(out string) error {
	f.Updated = time.Now().UTC()
	data, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(out, "sweep.json"), append(data, '\n'))
}

// fillFromRun copies a run folder's status and best epoch into rec.
func fillFromRun(rec *runRecord, dir string) {
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

// printSummary prints one line per run: state, epochs, best epoch.
func printSummary(w io.Writer, f *recordFile) {
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
