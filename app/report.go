package app

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/kfash-tf/kfash-tf/app/report"
	"github.com/kfash-tf/kfash-tf/graphs/runs"
	"github.com/kfash-tf/kfash-tf/models"
)

func reportCommand() *cli.Command {
	return &cli.Command{
		Name:      "report",
		Usage:     "compare runs: the study's model-selection table, learning curves, confusion matrices (HTML, Markdown, JSON)",
		ArgsUsage: "RUN_OR_DIR... --out DIR",
		Description: "Each argument is a run folder (made by 'kfash-tf train') or a folder holding run folders one\n" +
			"or two levels down: runs/, a sweep folder, a folder of sweeps.\n\n" +
			"The report reproduces the study's model-selection table: per run the network, batch size,\n" +
			"optimizer, learning rate, weight decay, dropout, the selected epoch (\"45 / 100\"), train and\n" +
			"validation accuracy and macro F1 there, validation loss (mean per example), #params and the\n" +
			"run's status. The epoch is recomputed from metrics.jsonl by the run's own rule (--select of\n" +
			"train: val_acc, the first epoch with the highest validation accuracy, or val_loss, the lowest\n" +
			"validation loss); the best run (★) has the highest validation accuracy at its selected epoch,\n" +
			"ties going to the lower validation loss. Then a chart of every run's validation accuracy per\n" +
			"epoch and, per run, accuracy and loss curves with the selected epoch marked, the validation\n" +
			"confusion matrix of that epoch and a per-class precision/recall/F1/support table, plus\n" +
			"RUN/evaluation-SPLIT.json when 'kfash-tf evaluate' wrote one.\n\n" +
			"Each run with a best checkpoint also gets a gallery: it predicts its validation images (of\n" +
			"--data, or of the dataset its config.json records; without one the gallery is skipped with a\n" +
			"note) and shows the --gallery N it gets most confidently wrong and 2 right ones per class,\n" +
			"each under its Grad-CAM map as 'kfash-tf explain' draws it. --no-gallery leaves them out.\n\n" +
			"Unfinished, interrupted, failed and corrupt runs are listed with their status (and a failed\n" +
			"run's error); nothing in a run folder stops the report.\n\n" +
			"Output (--format html, the default): DIR/index.html (one self-contained page: open it from\n" +
			"disk, nothing is fetched), DIR/report.md, DIR/report.json, DIR/comparison.png|svg and\n" +
			"DIR/runs/RUN/ with each run's charts as PNG and SVG. --format md writes all but index.html.\n" +
			"--format json prints the table as JSON (one object per run) and writes nothing else, except\n" +
			"DIR/report.json when --out is given.\n\n" +
			"Examples:\n" +
			"  kfash-tf report runs/ --out report/                  # every run under runs/\n" +
			"  kfash-tf report runs/seed --out runs/seed/report     # a sweep's runs\n" +
			"  kfash-tf report runs/alex1 runs/gn-seed --out cmp/   # two runs side by side\n" +
			"  kfash-tf report runs/ --split test --out report/     # show evaluation-test.json files\n" +
			"  kfash-tf report runs/ --format json | jq '.[] | select(.best)'",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "out", Usage: "report folder (created; files in it are replaced)"},
			formatFlag("html", "md", "json"),
			&cli.StringFlag{Name: "split", Value: "validation", Usage: "show each run's evaluation-SPLIT.json (from 'kfash-tf evaluate --split SPLIT') when it exists"},
			&cli.IntFlag{Name: "gallery", Value: 8, Usage: "per run, show the `N` validation images it gets most confidently wrong (and 2 right ones per class) with their Grad-CAM maps"},
			&cli.BoolFlag{Name: "no-gallery", Usage: "leave the galleries out (they need TensorFlow and a pass over each run's validation images)"},
			&cli.StringFlag{Name: "data", Usage: "dataset folder for the galleries (default: each run's own, from its config.json)"},
		},
		Action: runReport,
	}
}

func runReport(c *cli.Context) error {
	format := c.String("format")
	if err := checkFormat(format, "html", "md", "json"); err != nil {
		return err
	}
	if c.Args().Len() == 0 {
		return fmt.Errorf("report needs run folders or folders of runs, e.g. kfash-tf report runs/ --out report/")
	}
	dir := c.String("out")
	if dir == "" && format != "json" {
		return fmt.Errorf("report needs --out DIR for the %s report, e.g. kfash-tf report %s --out report/ (or --format json to print the table)", format, c.Args().First())
	}
	found, err := report.Find(c.Args().Slice())
	if err != nil {
		return err
	}
	opts := report.Options{Split: c.String("split"), Network: registryNetworks()}
	if n := c.Int("gallery"); n < 0 {
		return fmt.Errorf("--gallery %d: want a number of images ≥ 0 (or --no-gallery)", n)
	} else if !c.Bool("no-gallery") {
		opts.Gallery = galleryFunc(n, c.String("data"), c.App.ErrWriter)
	}
	rep := report.Build(found, opts)
	if format == "json" {
		data, err := rep.JSON()
		if err != nil {
			return err
		}
		if dir != "" {
			if _, err := report.Write(rep, dir, report.Formats{JSON: true}); err != nil {
				return err
			}
		}
		_, err = out(c).Write(data)
		return err
	}
	w, err := report.Write(rep, dir, report.Formats{HTML: format == "html", Markdown: true, JSON: true})
	if err != nil {
		return err
	}
	fmt.Fprintln(c.App.ErrWriter, summaryLine(rep))
	if w.HTML != "" {
		fmt.Fprintln(out(c), w.HTML)
	} else {
		fmt.Fprintln(out(c), w.Markdown)
	}
	return nil
}

// summaryLine is the report's verdict for the terminal.
func summaryLine(rep *report.Report) string {
	s := fmt.Sprintf("%d runs", len(rep.Runs))
	if len(rep.Runs) == 1 {
		s = "1 run"
	}
	b := rep.Best
	if b == nil {
		return s + "; no run has a selected epoch yet"
	}
	sel := b.SelectedRow()
	return fmt.Sprintf("%s; best: %s (validation accuracy %.2f%% at epoch %d)", s, b.Name, 100*sel.ValAcc, sel.Epoch)
}

// registryNetworks describes networks from the models registry, building
// each (network, classes, dropout) once: a sweep has many runs of the same
// network.
func registryNetworks() report.NetworkInfo {
	cache := map[string]report.NetInfo{}
	return func(cfg runs.Config) (report.NetInfo, error) {
		spec, err := models.Get(cfg.Network)
		if err != nil {
			return report.NetInfo{}, err
		}
		mc := models.Config{NumClasses: len(cfg.Classes), Dropout: cfg.Dropout}
		if mc.NumClasses == 0 {
			return report.NetInfo{}, fmt.Errorf("config.json lists no classes")
		}
		key := fmt.Sprintf("%s/%d/%g", spec.Name, mc.NumClasses, mc.Dropout)
		if info, ok := cache[key]; ok {
			return info, nil
		}
		sum, err := models.Summarize(spec, mc)
		if err != nil {
			return report.NetInfo{}, err
		}
		info := report.NetInfo{Params: sum.TrainableParams, HasDropout: spec.HasDrop}
		cache[key] = info
		return info, nil
	}
}
