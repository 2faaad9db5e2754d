package app

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/kfash-tf/kfash-tf/augment"
	"github.com/kfash-tf/kfash-tf/graphs"
	"github.com/kfash-tf/kfash-tf/graphs/runs"
	"github.com/kfash-tf/kfash-tf/internal/atomicfile"
	"github.com/kfash-tf/kfash-tf/internal/heatmap"
)

// explainSidecar is NAME.map.json: what the 16-bit map next to it shows.
type explainSidecar struct {
	File        string  `json:"file"`
	Network     string  `json:"network"`
	Layer       string  `json:"layer"`
	Class       string  `json:"class"`       // the class explained
	Probability float64 `json:"probability"` // of the class explained
	Predicted   string  `json:"predicted"`
	PredictedP  float64 `json:"predicted_probability"`
	Min         float32 `json:"min"` // the map's range before normalising to [0,1]
	Max         float32 `json:"max"`
	Size        int     `json:"size"` // the map is size×size, the network's input
}

func explainCommand() *cli.Command {
	return &cli.Command{
		Name:      "explain",
		Usage:     "show where a trained network looks: a Grad-CAM heat map per photo",
		ArgsUsage: "RUN|EXPORT PHOTO...",
		Description: "RUN is a run folder (its best checkpoint); EXPORT, a SavedModel written by 'kfash-tf\n" +
			"export', explained with its explain signature. For each PHOTO (an image, or a folder of\n" +
			"images searched recursively) explain writes three files to --out, named after the photo:\n" +
			"  NAME.explain.png  the photo at the network's input size under a viridis heat map\n" +
			"                    (yellow: the regions that raised the class's score most), and a\n" +
			"                    legend: predicted class and probability, explained class, layer\n" +
			"  NAME.map.png      the map alone, 16-bit grayscale, normalised to [0,1]\n" +
			"  NAME.map.json     its class, probability, layer, network and the range before normalising\n\n" +
			"The map is Grad-CAM (Selvaraju et al. 2017) over the network's last convolutional\n" +
			"feature map ('kfash-tf models show NETWORK' marks it); --layer picks another row of that\n" +
			"table. The class explained is each photo's predicted class unless --class names one.\n" +
			"An export explains the layer fixed when it was exported (the default): another --layer\n" +
			"needs the run folder.\n\n" +
			"Examples:\n" +
			"  kfash-tf explain runs/cs3 photo.jpg --out heat/\n" +
			"  kfash-tf explain runs/cs3 photos/ --out heat/ --class Retro\n" +
			"  kfash-tf explain runs/cs3 photo.jpg --out heat/ --layer block3/conv2",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "out", Required: true, Usage: "folder to write the maps to (created if missing)"},
			&cli.StringFlag{Name: "class", Usage: "explain this class instead of each photo's predicted one"},
			&cli.StringFlag{Name: "layer", Usage: "the layer whose feature map is explained (default: the network's, see 'models show')"},
			&cli.StringFlag{Name: "checkpoint", Value: "best", Usage: "best or last"},
		},
		Action: func(c *cli.Context) error {
			if c.Args().Len() < 2 {
				return fmt.Errorf("explain needs a run folder or an export and at least one photo: kfash-tf explain RUN PHOTO... --out DIR")
			}
			err := runExplain(c, c.Args().First(), c.Args().Slice()[1:])
			return explainInFlagTerms(err)
		},
	}
}

// runExplain opens the run, checks every photo and the class before
// writing anything, then writes each photo's three files.
func runExplain(c *cli.Context, model string, paths []string) error {
	m, err := graphs.OpenServable(model, c.String("checkpoint"), runs.SessionConfig{})
	if err != nil {
		return err
	}
	defer m.Close()
	ex, err := graphs.NewExplainer(m, c.String("layer"))
	if err != nil {
		return err
	}
	classes := m.Classes()
	target := -1
	if name := c.String("class"); name != "" {
		if target = indexOf(classes, name); target < 0 {
			return fmt.Errorf("--class %q: the run's classes are %s", name, strings.Join(classes, ", "))
		}
	}
	files, failed := listImageFiles(paths, c.App.ErrWriter)
	if failed > 0 {
		return fmt.Errorf("%d of the photos given cannot be read (see above)", failed)
	}
	if len(files) == 0 {
		return fmt.Errorf("no photos in %s", strings.Join(paths, ", "))
	}
	images := make([][]float32, len(files))
	for i, f := range files {
		b, err := augment.ReadRegularFile(f)
		if err == nil {
			images[i], err = m.DecodeImage(b)
		}
		if err != nil {
			return fmt.Errorf("photo %s: %w", f, err)
		}
	}
	outDir := c.String("out")
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return fmt.Errorf("--out: %w", err)
	}
	names := outputNames(files)
	for i, f := range files {
		var targets []int // nil: the predicted class, chosen in the graph
		if target >= 0 {
			targets = []int{target}
		}
		res, err := ex.Explain(images[i], 1, targets)
		if err != nil {
			return fmt.Errorf("photo %s: %w", f, err)
		}
		e := res[0]
		side := explainSidecar{File: f, Network: ex.Network(), Layer: ex.Layer(),
			Class: classes[e.Target], Probability: float64(e.Probs[e.Target]),
			Predicted: classes[e.Predicted], PredictedP: float64(e.Probs[e.Predicted]),
			Min: e.Min, Max: e.Max, Size: e.Size}
		if err := writeExplanation(filepath.Join(outDir, names[i]), images[i], e, side); err != nil {
			return fmt.Errorf("photo %s: %w", f, err)
		}
		fmt.Fprintf(out(c), "%s: %s %.3f, explained %s at %s → %s.explain.png\n",
			f, side.Predicted, side.PredictedP, side.Class, side.Layer, filepath.Join(outDir, names[i]))
	}
	return nil
}

// writeExplanation writes base.explain.png, base.map.png and base.map.json.
func writeExplanation(base string, photo []float32, e graphs.Explanation, side explainSidecar) error {
	legend := []string{
		fmt.Sprintf("predicted %s %.1f%%", side.Predicted, 100*side.PredictedP),
		fmt.Sprintf("explained %s %.1f%%", side.Class, 100*side.Probability),
		fmt.Sprintf("%s %s", side.Network, side.Layer),
	}
	overlay, err := heatmap.OverlayPNG(photo, e.Map, e.Size, legend)
	if err != nil {
		return err
	}
	raw, err := heatmap.MapPNG16(e.Map, e.Size)
	if err != nil {
		return err
	}
	js, err := json.MarshalIndent(side, "", "  ")
	if err != nil {
		return err
	}
	for _, f := range []struct {
		path string
		data []byte
	}{{base + ".explain.png", overlay}, {base + ".map.png", raw}, {base + ".map.json", append(js, '\n')}} {
		if err := atomicfile.WriteFile(f.path, f.data); err != nil {
			return err
		}
	}
	return nil
}

// outputNames names each photo's files after its base name, with -2, -3, …
// added when two photos share one.
func outputNames(files []string) []string {
	seen := map[string]int{}
	names := make([]string, len(files))
	for i, f := range files {
		b := strings.TrimSuffix(filepath.Base(f), filepath.Ext(f))
		seen[b]++
		if n := seen[b]; n > 1 {
			b = fmt.Sprintf("%s-%d", b, n)
		}
		names[i] = b
	}
	return names
}

func indexOf(list []string, s string) int {
	for i, v := range list {
		if v == s {
			return i
		}
	}
	return -1
}
