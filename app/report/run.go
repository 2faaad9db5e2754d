package report

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/kfash-tf/kfash-tf/graphs/runs"
)

// StateCorrupt is the status of a run folder whose config.json is missing or
// unreadable: nothing can be resumed, evaluated or exported from it.
const StateCorrupt = "corrupt"

// NetInfo is what the report needs to know about a run's network.
type NetInfo struct {
	Params     int64 // trainable parameters
	HasDropout bool  // whether the network uses its dropout rate
}

// NetworkInfo describes the network a run config builds.
type NetworkInfo func(cfg runs.Config) (NetInfo, error)

// Options shape a report.
type Options struct {
	// Split names the evaluation-SPLIT.json files (written by `kfash-tf
	// evaluate`) shown with each run; "" means "validation".
	Split string
	// Network describes a run's network (the CLI builds it from the models
	// registry, which needs TensorFlow); nil leaves #params unknown and
	// shows every run's dropout.
	Network NetworkInfo
	// Gallery computes each run's gallery of validation images with their
	// Grad-CAM overlays; nil leaves the galleries out.
	Gallery GalleryFunc
	// Generated is the report's time stamp; zero means now.
	Generated time.Time
}

// Report is a set of runs with the best one chosen.
type Report struct {
	Generated time.Time
	Split     string
	Runs      []*Run
	Best      *Run // nil when no run has a selected epoch
}

// Run is one run folder as the report sees it.
type Run struct {
	Name       string
	Dir        string
	Slug       string             // the run's folder name under the report's runs/
	Config     *runs.Config       // nil when config.json is missing or unreadable
	Status     runs.Status        // status.json (state "unknown" when missing)
	NoStatus   bool               // status.json does not exist
	State      string             // Status.State, or StateCorrupt
	Metrics    []runs.EpochResult // readable rows of metrics.jsonl, by epoch
	EpochsDone int
	Rule       string // the selection rule applied: runs.SelectValAcc or SelectValLoss
	Selected   int    // index into Metrics of the selected epoch, -1 for none
	Net        *NetInfo
	Confusion  [][]int64 // the selected epoch's validation confusion matrix, when recorded
	Evaluation *Evaluation
	Problems   []string
	Best       bool
	Gallery    *Gallery // nil when none was asked for (Options.Gallery)
}

// SelectedRow returns the metrics of the selected epoch, or nil.
func (r *Run) SelectedRow() *runs.EpochResult {
	if r.Selected < 0 || r.Selected >= len(r.Metrics) {
		return nil
	}
	return &r.Metrics[r.Selected]
}

// Classes returns the run's class names ("class 0", … when unknown).
func (r *Run) Classes(k int) []string {
	if r.Config == nil {
		return classNames(nil, k)
	}
	return classNames(r.Config.Classes, k)
}

// Build reads the run folders found and chooses the best run. It never
// fails: what cannot be read is recorded in each run's Problems.
func Build(found []Found, opts Options) *Report {
	if opts.Split == "" {
		opts.Split = "validation"
	}
	if opts.Generated.IsZero() {
		opts.Generated = time.Now()
	}
	rep := &Report{Generated: opts.Generated, Split: opts.Split}
	slugs := map[string]bool{}
	for _, f := range found {
		r := Load(f.Dir, f.Name, opts)
		r.Slug = uniqueSlug(slugify(f.Name), slugs)
		addGallery(r, opts.Gallery)
		rep.Runs = append(rep.Runs, r)
	}
	rep.Best = bestRun(rep.Runs)
	if rep.Best != nil {
		rep.Best.Best = true
	}
	return rep
}

// Load reads one run folder.
func Load(dir, name string, opts Options) *Run {
	r := &Run{Name: name, Dir: dir, Selected: -1, Rule: runs.SelectValAcc}
	run, cfg, err := runs.Open(dir)
	if err == nil {
		r.Config = &cfg
	} else {
		r.problem("%v", err)
	}
	st, err := run.ReadStatus()
	if err != nil {
		r.problem("%v", err)
	}
	r.Status = st
	if _, err := os.Stat(filepath.Join(dir, "status.json")); err != nil {
		r.NoStatus = true
	}
	r.State = st.State
	if r.State == "" {
		r.State = runs.StateUnknown
	}
	if r.Config == nil {
		r.State = StateCorrupt
	}
	rows, problems := readMetrics(dir)
	r.Metrics = rows
	r.Problems = append(r.Problems, problems...)
	r.EpochsDone = st.EpochsDone
	if n := len(rows); n > 0 && rows[n-1].Epoch > r.EpochsDone {
		r.EpochsDone = rows[n-1].Epoch
	}
	if len(rows) == 0 {
		r.problem("no epoch recorded in metrics.jsonl yet")
	}
	r.applyRule()
	r.checkSelection(readBestPointer(dir))
	r.pickConfusion()
	if opts.Network != nil && r.Config != nil {
		if info, err := opts.Network(*r.Config); err == nil {
			r.Net = &info
		} else {
			r.problem("#params: %v", err)
		}
	}
	if ev, err := readEvaluation(dir, opts.Split); err != nil {
		r.problem("%v", err)
	} else {
		r.Evaluation = ev
	}
	return r
}

func (r *Run) problem(format string, args ...any) {
	r.Problems = append(r.Problems, fmt.Sprintf(format, args...))
}

// applyRule recomputes the selected epoch from the metrics with the run's
// selection rule rather than trusting the "best" flags.
func (r *Run) applyRule() {
	if r.Config != nil {
		switch r.Config.Select {
		case runs.SelectValAcc, runs.SelectValLoss:
			r.Rule = r.Config.Select
		case "":
		default:
			r.problem("config.json: unknown selection rule %q, %s used", r.Config.Select, runs.SelectValAcc)
		}
	}
	r.Selected = SelectEpoch(r.Metrics, r.Rule)
	if r.Selected < 0 && len(r.Metrics) > 0 {
		r.problem("no epoch has a valid %s (all NaN, written as -1 by older runs)", r.Rule)
	}
}

// checkSelection notes where the recorded best epoch (the "best" flags of
// metrics.jsonl, status.json, checkpoints/best.json) disagrees with the
// recomputed one: the exported model is the checkpoint's.
func (r *Run) checkSelection(pointerEpoch int) {
	sel := r.SelectedRow()
	if sel == nil {
		return
	}
	flagged := 0
	for _, e := range r.Metrics {
		if e.Best {
			flagged = e.Epoch
		}
	}
	if flagged != 0 && flagged != sel.Epoch {
		r.problem("metrics.jsonl flags epoch %d as best, but the rule (%s) selects epoch %d", flagged, r.Rule, sel.Epoch)
	}
	if b := r.Status.BestEpoch; b != 0 && b != sel.Epoch {
		r.problem("status.json names epoch %d as best, but the rule (%s) selects epoch %d", b, r.Rule, sel.Epoch)
	}
	if pointerEpoch != 0 && pointerEpoch != sel.Epoch {
		r.problem("checkpoints/best.json holds epoch %d, but the rule (%s) selects epoch %d", pointerEpoch, r.Rule, sel.Epoch)
	}
}

// pickConfusion keeps the selected epoch's confusion matrix when it is
// recorded and well formed.
func (r *Run) pickConfusion() {
	sel := r.SelectedRow()
	if sel == nil || len(sel.ValConfusion) == 0 {
		return
	}
	classes := 0
	if r.Config != nil {
		classes = len(r.Config.Classes)
	}
	if err := checkConfusion(sel.ValConfusion, classes); err != nil {
		r.problem("metrics.jsonl epoch %d: %v", sel.Epoch, err)
		return
	}
	r.Confusion = sel.ValConfusion
}

// validMetric returns the row's value for the selection rule and whether it
// is a real value: not NaN or infinite, nor the -1 older runs wrote for
// them (see package runs).
func validMetric(e runs.EpochResult, rule string) (float64, bool) {
	v := e.ValAcc
	if rule == runs.SelectValLoss {
		v = e.ValLoss
	}
	if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
		return v, false
	}
	return v, true
}

// SelectEpoch returns the index in rows (sorted by epoch) of the epoch the
// rule selects: runs.SelectValLoss the lowest validation loss, anything
// else the highest validation accuracy; on a tie the first such epoch, as
// the training loop does. -1 when no row has a valid value.
func SelectEpoch(rows []runs.EpochResult, rule string) int {
	best, bestV := -1, 0.0
	for i, e := range rows {
		v, ok := validMetric(e, rule)
		if !ok {
			continue
		}
		improves := v > bestV
		if rule == runs.SelectValLoss {
			improves = v < bestV
		}
		if best < 0 || improves {
			best, bestV = i, v
		}
	}
	return best
}

// bestRun returns the run with the highest validation accuracy at its
// selected epoch, ties going to the lower validation loss, then to the
// earlier run. Runs without a config cannot be used and are not candidates.
func bestRun(all []*Run) *Run {
	var best *Run
	for _, r := range all {
		sel := r.SelectedRow()
		if sel == nil || r.Config == nil {
			continue
		}
		if _, ok := validMetric(*sel, runs.SelectValAcc); !ok {
			continue
		}
		if best == nil || beats(*sel, *best.SelectedRow()) {
			best = r
		}
	}
	return best
}

// beats reports whether a is a better selected epoch than b across runs.
func beats(a, b runs.EpochResult) bool {
	if a.ValAcc != b.ValAcc {
		return a.ValAcc > b.ValAcc
	}
	return lossOrInf(a) < lossOrInf(b)
}

func lossOrInf(e runs.EpochResult) float64 {
	if v, ok := validMetric(e, runs.SelectValLoss); ok {
		return v
	}
	return math.Inf(1)
}

// slugify turns a run name into a folder name: letters, digits, '.', '_'
// and '-' kept, anything else (path separators included) becomes '-'.
func slugify(name string) string {
	var b strings.Builder
	for _, c := range name {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '-', c == '.':
			b.WriteRune(c)
		default:
			b.WriteRune('-')
		}
	}
	s := strings.Trim(b.String(), "-.")
	if s == "" {
		s = "run"
	}
	return s
}

// uniqueSlug returns s, or s-2, s-3, … when taken, and marks it taken.
func uniqueSlug(s string, taken map[string]bool) string {
	out := s
	for i := 2; taken[out]; i++ {
		out = fmt.Sprintf("%s-%d", s, i)
	}
	taken[out] = true
	return out
}

// created returns when the run was made: config.json's time stamp, or the
// folder's modification time for an old or corrupt config.
func (r *Run) created() time.Time {
	if r.Config != nil && !r.Config.Created.IsZero() {
		return r.Config.Created
	}
	if info, err := os.Stat(filepath.Join(r.Dir, "config.json")); err == nil {
		return info.ModTime()
	}
	return time.Time{}
}
