package app

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/kfash-tf/kfash-tf/augment"
	"github.com/kfash-tf/kfash-tf/graphs"
	"github.com/kfash-tf/kfash-tf/graphs/runs"
	"github.com/kfash-tf/kfash-tf/internal/atomicfile"
)

// Report is the result of `kfash-tf evaluate`, in the layout of sklearn's
// classification_report plus the confusion matrix.
type Report struct {
	Run             string              `json:"run"`
	Checkpoint      string              `json:"checkpoint"`
	Epoch           int                 `json:"epoch"`
	Data            string              `json:"data"`
	Split           string              `json:"split"`
	Classes         []string            `json:"classes"`
	Examples        int                 `json:"examples"`
	Skipped         []string            `json:"skipped_files,omitempty"`
	Accuracy        float64             `json:"accuracy"`
	Loss            float64             `json:"loss"`
	PerClass        []ClassReport       `json:"per_class"`
	MacroF1         float64             `json:"macro_f1"`
	MacroAvg        runs.ClassScores    `json:"macro_avg"`
	WeightedAvg     runs.ClassScores    `json:"weighted_avg"`
	ConfusionMatrix [][]int64           `json:"confusion_matrix"`
	ExtraClasses    []string            `json:"extra_classes,omitempty"`
	Predictions     []graphs.Prediction `json:"-"`
}

// ClassReport is one class's row.
type ClassReport struct {
	Class string `json:"class"`
	runs.ClassScores
}

func evaluateCommand() *cli.Command {
	return &cli.Command{
		Name:      "evaluate",
		Usage:     "judge a trained run on a dataset: accuracy, loss, per-class precision/recall/F1, confusion matrix",
		ArgsUsage: "RUN --data DIR",
		Description: "DIR is a split root (Train/ Validation/ Test/) or a flat folder of class folders.\n" +
			"Classes are matched by name to the run's classes: a class the run knows that DIR lacks\n" +
			"is an error, a class DIR has that the run does not know is reported and ignored.\n" +
			"The report is printed and also written to RUN/evaluation-SPLIT.json.\n\n" +
			"Examples:\n  kfash-tf evaluate runs/cs3 --data photos/ --split test\n  kfash-tf evaluate runs/cs3 --data photos/ --format json",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "data", Usage: "dataset folder (split root or flat class folders)"},
			&cli.StringFlag{Name: "split", Value: "validation", Usage: "split of a split root: validation or test (or train)"},
			&cli.StringFlag{Name: "checkpoint", Value: "best", Usage: "best or last"},
			&cli.IntFlag{Name: "batch-size", Value: 32, Usage: "images per inference batch"},
			formatFlag("text", "json", "csv"),
		},
		Action: func(c *cli.Context) error {
			if c.Args().Len() != 1 || c.String("data") == "" {
				return fmt.Errorf("evaluate needs a run folder and --data DIR, e.g. kfash-tf evaluate runs/cs3 --data photos/ --split test")
			}
			if err := checkFormat(c.String("format"), "text", "json", "csv"); err != nil {
				return err
			}
			rep, err := evaluate(c.Context, c.Args().First(), c.String("data"), c.String("split"), c.String("checkpoint"), c.Int("batch-size"), c.App.ErrWriter)
			if err != nil {
				return err
			}
			data, _ := json.MarshalIndent(rep, "", "  ")
			path := filepath.Join(rep.Run, "evaluation-"+rep.Split+".json")
			if err := atomicfile.WriteFile(path, append(data, '\n')); err != nil {
				return err
			}
			switch c.String("format") {
			case "json":
				_, err = fmt.Fprintf(out(c), "%s\n", data)
			case "csv":
				err = writeReportCSV(out(c), rep)
			default:
				err = writeReportText(out(c), rep)
			}
			return err
		},
	}
}

// evaluate runs the run's inference graph over one split of dir.
func evaluate(ctx context.Context, runDir, dir, split, checkpoint string, batch int, log io.Writer) (*Report, error) {
	run, cfg, err := runs.Open(runDir)
	if err != nil {
		return nil, err
	}
	rc, err := run.ResolveCheckpoint(checkpoint)
	if errors.Is(err, runs.ErrNoCheckpoint) && checkpoint == "best" {
		// Said plainly rather than silently evaluating last.
		return nil, fmt.Errorf("run %s has no best checkpoint (no epoch finished, or it was killed first): evaluate --checkpoint last, or resume the run", runDir)
	}
	if err != nil {
		return nil, fmt.Errorf("run %s: %w", runDir, err)
	}
	if rc.Recovered != "" {
		fmt.Fprintf(log, "run %s: %s\n", runDir, rc.Recovered)
	}
	prefix, st := rc.Prefix, rc.State
	all, err := augment.Open(dir, augment.OpenOptions{})
	if err != nil {
		return nil, err
	}
	var extra []string
	for _, name := range all.Classes {
		if !contains(cfg.Classes, name) {
			extra = append(extra, name)
		}
	}
	ds, err := augment.Open(dir, augment.OpenOptions{Classes: cfg.Classes})
	if err != nil {
		return nil, fmt.Errorf("%w (the run %s was trained on %s)", err, runDir, strings.Join(cfg.Classes, ", "))
	}
	if ds.Layout == augment.LayoutFlat {
		split = augment.SplitAll
	}
	samples, err := ds.Split(split)
	if err != nil {
		return nil, err
	}
	if len(samples) == 0 {
		return nil, fmt.Errorf("%s: no images in split %q", dir, split)
	}
	if len(extra) > 0 {
		fmt.Fprintf(log, "ignoring classes the run does not know: %s\n", strings.Join(extra, ", "))
	}
	ig, err := graphs.BuildInferenceGraph(cfg)
	if err != nil {
		return nil, err
	}
	p, err := graphs.NewPredictor(ig, prefix, cfg.Session)
	if err != nil {
		return nil, err
	}
	defer p.Close()
	rep := &Report{Run: runDir, Checkpoint: checkpoint, Epoch: st.Epoch, Data: dir, Split: split, Classes: cfg.Classes, ExtraClasses: extra}
	loader, err := augment.NewLoader(samples, augment.LoaderConfig{Size: cfg.InputSize, BatchSize: batch, Workers: cfg.Workers,
		OnSkip: func(r augment.SkipReport) {
			rep.Skipped = append(rep.Skipped, r.String())
			fmt.Fprintf(log, "skipping %s\n", r)
		}})
	if err != nil {
		return nil, err
	}
	conf := runs.NewConfusion(len(cfg.Classes))
	lossSum := 0.0
	ectx, cancel := context.WithCancel(ctx)
	defer cancel()
	k := len(cfg.Classes)
	for b := range loader.Epoch(ectx, 0) {
		probs, losses, err := p.Predict(b.Images, b.N, b.Labels)
		if err != nil {
			b.Release()
			return nil, err
		}
		for i := 0; i < b.N; i++ {
			row := probs[i*k : (i+1)*k]
			conf.Add(int(b.Labels[i]), graphs.Argmax(row))
			lossSum += float64(losses[i])
			rep.Predictions = append(rep.Predictions, graphs.Prediction{Path: b.Paths[i], Label: int(b.Labels[i]), Probs: append([]float32(nil), row...), Loss: float64(losses[i])})
		}
		rep.Examples += b.N
		b.Release()
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if rep.Examples == 0 {
		return nil, fmt.Errorf("%s: every image of split %q was unreadable", dir, split)
	}
	rep.Accuracy, rep.Loss = conf.Accuracy(), lossSum/float64(rep.Examples)
	rep.ConfusionMatrix = conf.Counts
	per := conf.PerClass()
	var total int64
	for i, s := range per {
		rep.PerClass = append(rep.PerClass, ClassReport{Class: cfg.Classes[i], ClassScores: s})
		rep.MacroAvg.Precision += s.Precision / float64(k)
		rep.MacroAvg.Recall += s.Recall / float64(k)
		rep.MacroAvg.F1 += s.F1 / float64(k)
		total += s.Support
	}
	for _, s := range per {
		w := float64(s.Support) / float64(total)
		rep.WeightedAvg.Precision += w * s.Precision
		rep.WeightedAvg.Recall += w * s.Recall
		rep.WeightedAvg.F1 += w * s.F1
	}
	rep.MacroAvg.Support, rep.WeightedAvg.Support = total, total
	rep.MacroF1 = rep.MacroAvg.F1
	return rep, nil
}

// writeReportText prints the report like sklearn's classification_report,
// then the confusion matrix (rows: true class, columns: predicted).
func writeReportText(w io.Writer, r *Report) error {
	fmt.Fprintf(w, "%s (%s checkpoint, epoch %d) on %s [%s]: %d images\n\n", r.Run, r.Checkpoint, r.Epoch, r.Data, r.Split, r.Examples)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "\tprecision\trecall\tf1-score\tsupport\t")
	for _, c := range r.PerClass {
		fmt.Fprintf(tw, "%s\t%.2f\t%.2f\t%.2f\t%d\t\n", c.Class, c.Precision, c.Recall, c.F1, c.Support)
	}
	fmt.Fprintln(tw, "\t\t\t\t\t")
	fmt.Fprintf(tw, "accuracy\t\t\t%.2f\t%d\t\n", r.Accuracy, r.Examples)
	fmt.Fprintf(tw, "macro avg\t%.2f\t%.2f\t%.2f\t%d\t\n", r.MacroAvg.Precision, r.MacroAvg.Recall, r.MacroAvg.F1, r.MacroAvg.Support)
	fmt.Fprintf(tw, "weighted avg\t%.2f\t%.2f\t%.2f\t%d\t\n", r.WeightedAvg.Precision, r.WeightedAvg.Recall, r.WeightedAvg.F1, r.WeightedAvg.Support)
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "\nloss (mean per example) %.4f\n\nconfusion matrix (rows: true, columns: predicted)\n", r.Loss)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "\t%s\t\n", strings.Join(r.Classes, "\t"))
	for i, row := range r.ConfusionMatrix {
		cells := make([]string, len(row))
		for j, v := range row {
			cells[j] = strconv.FormatInt(v, 10)
		}
		fmt.Fprintf(tw, "%s\t%s\t\n", r.Classes[i], strings.Join(cells, "\t"))
	}
	return tw.Flush()
}

// writeReportCSV writes one row per class and the averages.
func writeReportCSV(w io.Writer, r *Report) error {
	cw := csv.NewWriter(w)
	f := func(v float64) string { return strconv.FormatFloat(v, 'f', 6, 64) }
	cw.Write([]string{"class", "precision", "recall", "f1", "support"})
	for _, c := range r.PerClass {
		cw.Write([]string{c.Class, f(c.Precision), f(c.Recall), f(c.F1), strconv.FormatInt(c.Support, 10)})
	}
	cw.Write([]string{"macro avg", f(r.MacroAvg.Precision), f(r.MacroAvg.Recall), f(r.MacroAvg.F1), strconv.FormatInt(r.MacroAvg.Support, 10)})
	cw.Write([]string{"weighted avg", f(r.WeightedAvg.Precision), f(r.WeightedAvg.Recall), f(r.WeightedAvg.F1), strconv.FormatInt(r.WeightedAvg.Support, 10)})
	cw.Write([]string{"accuracy", "", "", f(r.Accuracy), strconv.Itoa(r.Examples)})
	cw.Write([]string{"loss", "", "", f(r.Loss), strconv.Itoa(r.Examples)})
	cw.Flush()
	return cw.Error()
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
