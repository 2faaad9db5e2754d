package app

import (
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/kfash-tf/kfash-tf/models"
	"github.com/kfash-tf/kfash-tf/tfops"
)

func modelsCommand() *cli.Command {
	classes := &cli.IntFlag{Name: "classes", Value: 3, Usage: "number of output classes (the study: 3)"}
	return &cli.Command{
		Name:  "models",
		Usage: "list the networks, or show one network's layer table",
		Description: "Lists the six networks of the seed study with their input size, trainable and\n" +
			"non-trainable (batch-norm moving statistics) parameters, and forward FLOPs per image\n" +
			"(2 × the multiply-accumulates of convolutions and dense layers).\n\n" +
			"Examples:\n  kfash-tf models\n  kfash-tf models --format json\n  kfash-tf models show googlenet --depth 1",
		Flags: []cli.Flag{formatFlag("text", "json"), classes},
		Action: func(c *cli.Context) error {
			if c.Args().Len() > 0 {
				return fmt.Errorf("unknown argument %q: did you mean 'kfash-tf models show %s'?", c.Args().First(), c.Args().First())
			}
			if err := checkFormat(c.String("format"), "text", "json"); err != nil {
				return err
			}
			var sums []*models.Summary
			for _, spec := range models.All() {
				sum, err := summarize(spec, c.Int("classes"), -1)
				if err != nil {
					return err
				}
				sum.Layers = nil
				sums = append(sums, sum)
			}
			w := out(c)
			if c.String("format") == "json" {
				return writeJSON(w, sums)
			}
			tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
			fmt.Fprintln(tw, "network\tinput\ttrainable\tnon-trainable\tGFLOPs/image\t")
			for _, s := range sums {
				fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%.3f\t\n", s.Name, s.InputSize, commas(s.TrainableParams), commas(s.NonTrainableParams), float64(s.ForwardFLOPs)/1e9)
			}
			return tw.Flush()
		},
		Subcommands: []*cli.Command{{
			Name:      "show",
			Usage:     "print a network's layer table: layer, output shape, parameters, FLOPs",
			ArgsUsage: "NAME",
			Description: "--depth N sums the table by the first N parts of the layer names\n" +
				"(e.g. --depth 1 gives one row per stage or inception module).",
			Flags: []cli.Flag{formatFlag("text", "json"), classes,
				&cli.Float64Flag{Name: "dropout", Value: -1, Usage: "dropout rate (default: the study's)"},
				&cli.IntFlag{Name: "depth", Value: 0, Usage: "sum rows by the first N name parts (0: every layer)"}},
			Action: func(c *cli.Context) error {
				if c.Args().Len() != 1 {
					return fmt.Errorf("models show needs one network name: %s", strings.Join(models.Names(), ", "))
				}
				if err := checkFormat(c.String("format"), "text", "json"); err != nil {
					return err
				}
				spec, err := models.Get(c.Args().First())
				if err != nil {
					return err
				}
				sum, err := summarize(spec, c.Int("classes"), c.Float64("dropout"))
				if err != nil {
					return err
				}
				if d := c.Int("depth"); d > 0 {
					sum.Layers = groupLayers(sum.Layers, d)
				}
				if c.String("format") == "json" {
					return writeJSON(out(c), sum)
				}
				return printSummary(out(c), sum)
			},
		}},
	}
}

func summarize(spec models.Spec, classes int, dropout float64) (*models.Summary, error) {
	if classes < 2 {
		return nil, fmt.Errorf("--classes %d: a classifier needs at least 2 classes", classes)
	}
	cfg := spec.Config(classes)
	if dropout >= 0 {
		if dropout >= 1 {
			return nil, fmt.Errorf("--dropout %v: must be in [0, 1)", dropout)
		}
		cfg.Dropout = float32(dropout)
	}
	return models.Summarize(spec, cfg)
}

// groupLayers sums consecutive rows sharing the first depth name parts; a
// group's shape is its last row's.
func groupLayers(layers []tfops.Layer, depth int) []tfops.Layer {
	var out []tfops.Layer
	for _, l := range layers {
		key := tfops.LayerPrefix(l.Name, depth)
		if n := len(out); n > 0 && out[n-1].Name == key {
			g := &out[n-1]
			g.Trainable += l.Trainable
			g.NonTrainable += l.NonTrainable
			g.FLOPs += l.FLOPs
			if l.Shape != nil {
				g.Shape = l.Shape
			}
			if g.Op != l.Op {
				g.Op = "block"
			}
			continue
		}
		l.Name = key
		out = append(out, l)
	}
	return out
}

func printSummary(w interface{ Write([]byte) (int, error) }, s *models.Summary) error {
	fmt.Fprintf(w, "%s — %s, input %d×%d×3, %d classes\n\n", s.Name, s.Title, s.InputSize, s.InputSize, s.Classes)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "layer\top\toutput\tparams\tnon-trainable\tMFLOPs")
	for _, l := range s.Layers {
		name := l.Name
		if name == s.CAMLayer {
			name += " *" // explain's default layer, footnoted below
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%.1f\n", name, l.Op, shapeString(l.Shape), commas(l.Trainable), commas(l.NonTrainable), float64(l.FLOPs)/1e6)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "\ntrainable params      %s\nnon-trainable params  %s (batch-norm moving mean and variance)\nforward FLOPs/image   %s (%.3f G)\n",
		commas(s.TrainableParams), commas(s.NonTrainableParams), commas(s.ForwardFLOPs), float64(s.ForwardFLOPs)/1e9)
	if err == nil && s.CAMLayer != "" {
		_, err = fmt.Fprintf(w, "Grad-CAM layer        %s * (explain's default; any layer name above works with --layer)\n", s.CAMLayer)
	}
	return err
}

func shapeString(s []int64) string {
	parts := make([]string, len(s))
	for i, d := range s {
		parts[i] = fmt.Sprint(d)
	}
	return strings.Join(parts, "×")
}

// commas formats n with thousands separators, as the study's tables do.
func commas(n int64) string {
	s := fmt.Sprint(n)
	if n < 0 {
		return "-" + commas(-n)
	}
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

func writeJSON(w interface{ Write([]byte) (int, error) }, v interface{}) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
