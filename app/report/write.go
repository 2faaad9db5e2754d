package report

import (
	"encoding/json"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/kfash-tf/kfash-tf/graphs/runs"
	"github.com/kfash-tf/kfash-tf/internal/atomicfile"
)

// Formats selects the files Write produces. Figures (PNG and SVG) are
// written whenever HTML or Markdown is.
type Formats struct {
	HTML, Markdown, JSON bool
}

// Written names the files Write produced.
type Written struct {
	HTML, Markdown, JSON string // "" when not written
	Figures              int    // PNG and SVG files
	Gallery              int    // gallery overlays (PNG)
}

// JSON returns the model-selection table as a JSON array, one object per run.
func (rep *Report) JSON() ([]byte, error) {
	data, err := json.MarshalIndent(rep.Rows(), "", "  ")
	if err != nil {
		return nil, err
	}
	return append(data, '\n'), nil
}

// Write renders the report into dir (created if needed): report.json,
// report.md, index.html and, per run, runs/SLUG/ with the run's charts.
// Every file is written atomically. A chart that cannot be drawn is noted
// in its run's section; only failures to write are errors.
func Write(rep *Report, dir string, f Formats) (Written, error) {
	var w Written
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return w, fmt.Errorf("creating the report folder: %w", err)
	}
	if f.JSON {
		data, err := rep.JSON()
		if err != nil {
			return w, err
		}
		w.JSON = filepath.Join(dir, "report.json")
		if err := atomicfile.WriteFile(w.JSON, data); err != nil {
			return w, err
		}
	}
	if !f.HTML && !f.Markdown {
		return w, nil
	}
	v := newView(rep)
	n, err := v.writeFigures(dir)
	w.Figures = n
	if err != nil {
		return w, err
	}
	if w.Gallery, err = v.writeGalleries(dir); err != nil {
		return w, err
	}
	if f.Markdown {
		w.Markdown = filepath.Join(dir, "report.md")
		if err := atomicfile.WriteFile(w.Markdown, []byte(v.markdown())); err != nil {
			return w, err
		}
	}
	if f.HTML {
		page, err := v.html()
		if err != nil {
			return w, err
		}
		w.HTML = filepath.Join(dir, "index.html")
		if err := atomicfile.WriteFile(w.HTML, page); err != nil {
			return w, err
		}
	}
	return w, nil
}

// view is the report laid out for the Markdown and HTML pages.
type view struct {
	rep        *Report
	rows       []Row
	comparison *figure
	compNote   string
	runs       []*runView
}

// figure is a chart with the relative paths of its files.
type figure struct {
	*Figure
	Dir string // relative to the report folder, "/"-separated; "" for the top
}

func (f *figure) file(ext string) string { return path.Join(f.Dir, f.Name+"."+ext) }

// PNGFile and SVGFile are the figure's files relative to the report folder.
func (f *figure) PNGFile() string { return f.file("png") }
func (f *figure) SVGFile() string { return f.file("svg") }

// runView is a run's section.
type runView struct {
	run         *Run
	row         Row
	curves      []*figure
	confusion   *figure
	classes     *ClassReport
	confNote    string // why there is no confusion matrix
	eval        *Evaluation
	evalFig     *figure
	evalClasses *ClassReport
	figNotes    []string // charts that could not be drawn
}

// anchor is the id of the run's section in the HTML page.
func (rv *runView) anchor() string { return "run-" + rv.run.Slug }

func newView(rep *Report) *view {
	v := &view{rep: rep, rows: rep.Rows()}
	for i, r := range rep.Runs {
		v.runs = append(v.runs, newRunView(r, v.rows[i], rep.Split))
	}
	return v
}

func newRunView(r *Run, row Row, split string) *runView {
	rv := &runView{run: r, row: row, eval: r.Evaluation}
	dir := path.Join("runs", r.Slug)
	if len(r.Metrics) > 0 {
		for _, k := range curveKinds {
			fig, err := curvesFigure(r, k)
			if err != nil {
				rv.figNotes = append(rv.figNotes, fmt.Sprintf("%s chart: %v", k.name, err))
				continue
			}
			rv.curves = append(rv.curves, &figure{Figure: fig, Dir: dir})
		}
	}
	if sel := r.SelectedRow(); sel != nil && r.Confusion != nil {
		classes := r.Classes(len(r.Confusion))
		cr := NewClassReport(r.Confusion, classes)
		rv.classes = &cr
		fig, err := confusionFigure("confusion", fmt.Sprintf("Validation confusion matrix, epoch %d", sel.Epoch), r.Confusion, classes)
		if err != nil {
			rv.figNotes = append(rv.figNotes, fmt.Sprintf("confusion matrix: %v", err))
		} else {
			rv.confusion = &figure{Figure: fig, Dir: dir}
		}
	} else if sel != nil && r.Config != nil {
		rv.confNote = "No confusion matrix recorded for the selected epoch (run made by an older kfash-tf)."
		if r.Evaluation != nil && split == "validation" {
			rv.confNote += " The evaluation below, from " + r.Evaluation.File + ", has one."
		} else {
			rv.confNote += " Run 'kfash-tf evaluate " + r.Dir + " --data DIR' to get one."
		}
	}
	if ev := r.Evaluation; ev != nil {
		names := ev.Classes
		if len(names) == 0 && r.Config != nil {
			names = r.Config.Classes
		}
		if checkConfusion(ev.ConfusionMatrix, 0) == nil {
			k := len(ev.ConfusionMatrix)
			cr := NewClassReport(ev.ConfusionMatrix, classNames(names, k))
			rv.evalClasses = &cr
			fig, err := confusionFigure("confusion-"+slugify(ev.Split), evalTitle(ev), ev.ConfusionMatrix, classNames(names, k))
			if err != nil {
				rv.figNotes = append(rv.figNotes, fmt.Sprintf("%s confusion matrix: %v", ev.File, err))
			} else {
				rv.evalFig = &figure{Figure: fig, Dir: dir}
			}
		} else if len(ev.PerClass) > 0 {
			rv.evalClasses = &ClassReport{Classes: ev.PerClass, Accuracy: ev.Accuracy, Total: int64(ev.Examples)}
		}
	}
	return rv
}

func evalTitle(ev *Evaluation) string {
	split := ev.Split
	if split == "" {
		split = "evaluation"
	}
	t := strings.ToUpper(split[:1]) + split[1:] + " confusion matrix"
	if ev.Epoch > 0 {
		t += fmt.Sprintf(", epoch %d", ev.Epoch)
	}
	return t
}

// writeFigures draws the comparison chart and writes every figure's PNG
// and SVG; it returns the number of files written.
func (v *view) writeFigures(dir string) (int, error) {
	if fig, err := comparisonFigure(v.rep); err != nil {
		v.compNote = err.Error()
	} else {
		v.comparison = &figure{Figure: fig}
	}
	figs := []*figure{}
	if v.comparison != nil {
		figs = append(figs, v.comparison)
	}
	for _, rv := range v.runs {
		figs = append(figs, rv.figures()...)
	}
	n := 0
	for _, f := range figs {
		sub := filepath.Join(dir, filepath.FromSlash(f.Dir))
		if err := os.MkdirAll(sub, 0o755); err != nil {
			return n, err
		}
		for _, out := range []struct {
			name string
			data []byte
		}{{f.PNGFile(), f.PNG}, {f.SVGFile(), f.SVG}} {
			if err := atomicfile.WriteFile(filepath.Join(dir, filepath.FromSlash(out.name)), out.data); err != nil {
				return n, err
			}
			n++
		}
	}
	return n, nil
}

// figures returns the run's charts.
func (rv *runView) figures() []*figure {
	out := append([]*figure{}, rv.curves...)
	for _, f := range []*figure{rv.confusion, rv.evalFig} {
		if f != nil {
			out = append(out, f)
		}
	}
	return out
}

// statusCounts says how many runs are in each state: "3 runs: 2 finished, 1 failed".
func (v *view) statusCounts() string {
	counts := map[string]int{}
	for _, r := range v.rep.Runs {
		counts[r.State]++
	}
	var states []string
	for s := range counts {
		states = append(states, s)
	}
	sort.Slice(states, func(i, j int) bool { return stateOrder(states[i]) < stateOrder(states[j]) })
	var parts []string
	for _, s := range states {
		parts = append(parts, fmt.Sprintf("%d %s", counts[s], s))
	}
	noun := "runs"
	if len(v.rep.Runs) == 1 {
		noun = "run"
	}
	return fmt.Sprintf("%d %s: %s", len(v.rep.Runs), noun, strings.Join(parts, ", "))
}

func stateOrder(s string) int {
	for i, o := range []string{runs.StateFinished, runs.StateRunning, runs.StateInterrupted, runs.StateCrashed, runs.StateFailed, runs.StateUnknown, StateCorrupt} {
		if s == o {
			return i
		}
	}
	return 99
}

// bestSummary is the one-line verdict: the best run, its validation
// accuracy and epoch, its network and when it was made.
func (v *view) bestSummary() string {
	b := v.rep.Best
	if b == nil {
		return "No run has a selected epoch yet."
	}
	sel := b.SelectedRow()
	s := fmt.Sprintf("validation accuracy %.2f%% at epoch %d", 100*sel.ValAcc, sel.Epoch)
	if b.Config != nil && b.Config.Epochs > 0 {
		s += fmt.Sprintf(" of %d", b.Config.Epochs)
	}
	if b.Config != nil && b.Config.Network != "" {
		s += " (" + b.Config.Network + ")"
	}
	return s
}

// madeText is when a run was made, for people.
func madeText(r *Run) string {
	t := r.created()
	if t.IsZero() {
		return "unknown"
	}
	return stamp(t)
}

func stamp(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") }

// ruleText explains a selection rule.
func ruleText(rule string) string {
	if rule == runs.SelectValLoss {
		return "lowest validation loss"
	}
	return "highest validation accuracy"
}

// selectionNote explains how epochs and the best run are chosen.
const selectionNote = "Each run's epoch is selected by its own rule (config select: val_acc → the first epoch with the " +
	"highest validation accuracy; val_loss → the first with the lowest validation loss), recomputed from metrics.jsonl. " +
	"The best run (★) has the highest validation accuracy at its selected epoch; ties go to the lower validation loss. " +
	"Validation loss is the mean per example."

// settings lists a run's configuration for its section.
func (rv *runView) settings() [][2]string {
	c := rv.run.Config
	if c == nil {
		return nil
	}
	opt := rv.row.optimizerCell()
	if c.Optimizer.Name == runs.OptimizerSGD && c.Optimizer.Momentum > 0 {
		opt += fmt.Sprintf(" (momentum %g)", c.Optimizer.Momentum)
	}
	if c.Optimizer.NoDecayBNBias {
		opt += ", no decay on biases and BN"
	}
	if c.Optimizer.ClipNorm > 0 {
		opt += fmt.Sprintf(", clip norm %g", c.Optimizer.ClipNorm)
	}
	lr := rv.row.lrCell()
	if c.Schedule.Kind == "cosine" && c.Schedule.WarmupEpochs > 0 {
		lr += fmt.Sprintf(" (warmup %g epochs)", c.Schedule.WarmupEpochs)
	}
	if c.Schedule.Kind == "step" {
		lr += fmt.Sprintf(" (×%g every %d epochs)", c.Schedule.Gamma, c.Schedule.StepEpochs)
	}
	out := [][2]string{
		{"Network", c.Network},
		{"Classes", strings.Join(c.Classes, ", ")},
		{"Data", c.Data},
		{"Batch size", rv.row.batchCell()},
		{"Optimizer", opt},
		{"Learning rate", lr},
		{"Weight decay", rv.row.weightDecayCell()},
		{"Dropout", rv.row.dropoutCell()},
		{"Augmentation", c.Augment},
		{"Preprocessing", c.Normalize},
		{"Initialisation", initText(c.Init)},
		{"Selection rule", fmt.Sprintf("%s (%s)", rv.run.Rule, ruleText(rv.run.Rule))},
		{"Seed", fmt.Sprint(c.Seed)},
		{"Made", madeText(rv.run)},
	}
	if c.Recipe != "" {
		out = append(out, [2]string{"Recipe", c.Recipe})
	}
	if c.LabelSmoothing > 0 {
		out = append(out, [2]string{"Label smoothing", fmt.Sprint(c.LabelSmoothing)})
	}
	if c.Patience > 0 {
		out = append(out, [2]string{"Patience", fmt.Sprint(c.Patience)})
	}
	if c.Program != "" {
		out = append(out, [2]string{"kfash-tf", c.Program})
	}
	return out
}

// initText names a run's initialisation scheme; run folders written before
// it was a choice do not record it and used PyTorch's.
func initText(scheme string) string {
	if scheme == "" {
		return "torch"
	}
	return scheme
}

// statusLine describes the run's progress: "finished, 5 of 5 epochs".
func (rv *runView) statusLine() string {
	s := rv.row.Status
	if rv.row.Epochs > 0 {
		s += fmt.Sprintf(", %d of %d epochs", rv.row.EpochsDone, rv.row.Epochs)
	} else if n := rv.row.EpochsDone; n == 1 {
		s += ", 1 epoch"
	} else if n > 1 {
		s += fmt.Sprintf(", %d epochs", n)
	}
	if rv.run.NoStatus {
		s += " (no status.json: a run made by an older kfash-tf, or stopped before writing one)"
	}
	if !rv.run.Status.Updated.IsZero() {
		s += ", status updated " + stamp(rv.run.Status.Updated)
	}
	return s
}

// selectedLine describes the selected epoch's metrics.
func (rv *runView) selectedLine() string {
	sel := rv.run.SelectedRow()
	if sel == nil {
		return ""
	}
	return fmt.Sprintf("Selected epoch %d (%s): train accuracy %s%%, validation accuracy %s%%, macro F1 %s, validation loss %s.",
		sel.Epoch, ruleText(rv.run.Rule), percentCell(rv.row.TrainAcc), percentCell(rv.row.ValAcc),
		decimalCell(rv.row.ValMacroF1), decimalCell(rv.row.ValLoss))
}

// evalLine describes an evaluation-SPLIT.json.
func evalLine(ev *Evaluation) string {
	s := fmt.Sprintf("From %s (kfash-tf evaluate", ev.File)
	if ev.Checkpoint != "" {
		s += ", checkpoint " + ev.Checkpoint
	}
	if ev.Epoch > 0 {
		s += fmt.Sprintf(", epoch %d", ev.Epoch)
	}
	s += fmt.Sprintf("): %d examples, accuracy %.2f%%, loss %.4f, macro F1 %.4f.", ev.Examples, 100*ev.Accuracy, ev.Loss, ev.MacroF1)
	return s
}
