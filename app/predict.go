package app

import (
	"encoding/csv"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/kfash-tf/kfash-tf/augment"
	"github.com/kfash-tf/kfash-tf/graphs"
	"github.com/kfash-tf/kfash-tf/graphs/runs"
)

// prediction is one image's result.
type prediction struct {
	File          string             `json:"file"`
	Class         string             `json:"class"`
	Probability   float64            `json:"probability"`
	Top           []classProb        `json:"top"`
	Probabilities map[string]float64 `json:"probabilities"`
}

type classProb struct {
	Class       string  `json:"class"`
	Probability float64 `json:"probability"`
}

func predictCommand() *cli.Command {
	return &cli.Command{
		Name:      "predict",
		Usage:     "classify photos with a trained run or an exported SavedModel",
		ArgsUsage: "MODEL PATH...",
		Description: "MODEL is a run folder (its best checkpoint) or an exported SavedModel (a version\n" +
			"folder, or the base folder: its highest version). PATH is an image or a folder of\n" +
			"images (searched recursively). Images are decoded exactly as 'serve' decodes an upload,\n" +
			"so both give the same probabilities. Unreadable files are reported and skipped; the\n" +
			"exit status is 1 if any failed.\n\n" +
			"Examples:\n  kfash-tf predict runs/cs3 photo.jpg\n  kfash-tf predict /tmp/exp photos/ --top 2 --format csv",
		Flags: []cli.Flag{
			&cli.IntFlag{Name: "top", Value: 1, Usage: "show the K most likely classes"},
			&cli.StringFlag{Name: "checkpoint", Value: "best", Usage: "for a run folder: best or last"},
			&cli.IntFlag{Name: "batch-size", Value: 16, Usage: "images per inference batch"},
			formatFlag("table", "json", "csv"),
		},
		Action: func(c *cli.Context) error {
			if c.Args().Len() < 2 {
				return fmt.Errorf("predict needs a model and at least one image or folder: kfash-tf predict MODEL PATH...")
			}
			format := c.String("format")
			if err := checkFormat(format, "table", "json", "csv"); err != nil {
				return err
			}
			model, err := graphs.OpenServable(c.Args().First(), c.String("checkpoint"), runs.SessionConfig{})
			if err != nil {
				return err
			}
			defer model.Close()
			files, failed := listImageFiles(c.Args().Slice()[1:], c.App.ErrWriter)
			preds, bad := predictFiles(model, files, max(c.Int("batch-size"), 1), max(c.Int("top"), 1), c.App.ErrWriter)
			failed += bad
			if err := writePredictions(out(c), format, preds); err != nil {
				return err
			}
			if failed > 0 {
				return cli.Exit(fmt.Sprintf("%d of %d files could not be classified", failed, len(files)+failed-bad), 1)
			}
			return nil
		},
	}
}

// listImageFiles expands folders into the image files they hold, sorted.
func listImageFiles(paths []string, log io.Writer) (files []string, failed int) {
	for _, p := range paths {
		info, err := os.Stat(p)
		if err != nil {
			fmt.Fprintf(log, "%s: %v\n", p, err)
			failed++
			continue
		}
		if !info.IsDir() {
			files = append(files, p)
			continue
		}
		var found []string
		filepath.WalkDir(p, func(path string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() && isImageName(d.Name()) {
				found = append(found, path)
			}
			return nil
		})
		sort.Strings(found)
		files = append(files, found...)
	}
	return files, failed
}

func isImageName(name string) bool {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".jpg", ".jpeg", ".png", ".gif", ".webp", ".bmp":
		return !strings.HasPrefix(name, ".")
	}
	return false
}

// predictFiles classifies files in batches; a file that cannot be read or
// decoded is reported and skipped.
func predictFiles(m *graphs.Servable, files []string, batch, top int, log io.Writer) (preds []prediction, failed int) {
	classes := m.Classes()
	var names []string
	var data [][]byte
	flush := func() {
		if len(data) == 0 {
			return
		}
		probs, err := m.PredictBytes(data)
		if err != nil { // cannot happen after CheckImage, but never lose the batch: retry one by one
			for i := range data {
				p, err := m.PredictBytes(data[i : i+1])
				if err != nil {
					fmt.Fprintf(log, "%s: %v\n", names[i], err)
					failed++
					continue
				}
				preds = append(preds, makePrediction(names[i], p, classes, top))
			}
		} else {
			k := len(classes)
			for i := range data {
				preds = append(preds, makePrediction(names[i], probs[i*k:(i+1)*k], classes, top))
			}
		}
		names, data = names[:0], data[:0]
	}
	for _, f := range files {
		b, err := augment.ReadRegularFile(f) // a named pipe must not hang the command
		if err == nil {
			_, err = m.CheckImage(b)
		}
		if err != nil {
			fmt.Fprintf(log, "%s: %v\n", f, err)
			failed++
			continue
		}
		names, data = append(names, f), append(data, b)
		if len(data) == batch {
			flush()
		}
	}
	flush()
	return preds, failed
}

func makePrediction(file string, probs []float32, classes []string, top int) prediction {
	p := prediction{File: file, Probabilities: map[string]float64{}}
	order := make([]int, len(probs))
	for i := range order {
		order[i] = i
		p.Probabilities[classes[i]] = float64(probs[i])
	}
	sort.SliceStable(order, func(a, b int) bool { return probs[order[a]] > probs[order[b]] })
	for _, i := range order[:min(top, len(order))] {
		p.Top = append(p.Top, classProb{Class: classes[i], Probability: float64(probs[i])})
	}
	p.Class, p.Probability = p.Top[0].Class, p.Top[0].Probability
	return p
}

func writePredictions(w io.Writer, format string, preds []prediction) error {
	switch format {
	case "json":
		return writeJSON(w, preds)
	case "csv":
		cw := csv.NewWriter(w)
		cw.Write([]string{"file", "rank", "class", "probability"})
		for _, p := range preds {
			for r, t := range p.Top {
				cw.Write([]string{p.File, strconv.Itoa(r + 1), t.Class, strconv.FormatFloat(t.Probability, 'f', 6, 64)})
			}
		}
		cw.Flush()
		return cw.Error()
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "file\tclass\tprobability")
	for _, p := range preds {
		parts := make([]string, len(p.Top))
		for i, t := range p.Top {
			parts[i] = fmt.Sprintf("%s %.4f", t.Class, t.Probability)
		}
		fmt.Fprintf(tw, "%s\t%s\t%.4f\n", p.File, strings.Join(parts[:1], ""), p.Probability)
		for _, extra := range parts[1:] {
			fmt.Fprintf(tw, "\t%s\t\n", extra)
		}
	}
	return tw.Flush()
}
