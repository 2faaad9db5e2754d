package app

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/kfash-tf/kfash-tf/graphs"
	"github.com/kfash-tf/kfash-tf/graphs/runs"
)

// exportReport is what `kfash-tf export --format json` prints.
type exportReport struct {
	Run        string             `json:"run"`
	Dir        string             `json:"dir"`
	Version    int64              `json:"version"`
	Network    string             `json:"network"`
	Classes    []string           `json:"classes"`
	InputSize  int                `json:"input_size"`
	Checkpoint string             `json:"checkpoint"`
	Epoch      int                `json:"epoch"`
	Step       int64              `json:"step"`
	Metrics    map[string]float64 `json:"metrics,omitempty"`
	Variables  int                `json:"variables"`
	Signatures []string           `json:"signatures"`
	CheckDiff  float64            `json:"check_max_abs_diff"`
}

func exportCommand(version string) *cli.Command {
	return &cli.Command{
		Name:      "export",
		Usage:     "write a trained run as a TensorFlow SavedModel for TensorFlow Serving, Python or Go",
		ArgsUsage: "RUN --out DIR",
		Description: "Writes DIR/<version>/ (TensorFlow Serving's layout): saved_model.pb, variables/ and\n" +
			"assets/labels.txt, from the run's best checkpoint (or last when it has no best). Two\n" +
			"signatures share the network and its outputs (probabilities, classes, class_names):\n" +
			"  serving_default  images: float32 [N,S,S,3], RGB 0-255 (preprocessing is in the graph)\n" +
			"  serving_bytes    image_bytes: string [N] of JPEG/PNG/GIF/BMP files, decoded and resized\n" +
			"                   in the graph as the training pipeline does\n" +
			"The model is loaded back by TensorFlow and checked against the run before it is moved\n" +
			"into place; an existing version folder is never overwritten.\n\n" +
			"Examples:\n" +
			"  kfash-tf export runs/cs3 --out export/cs3\n" +
			"  kfash-tf export runs/cs3 --out export/cs3 --version 2 --checkpoint last",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "out", Usage: "export folder: the model is written to OUT/<version>/"},
			&cli.Int64Flag{Name: "version", Value: 1, Usage: "version folder number (TensorFlow Serving serves the highest)"},
			&cli.StringFlag{Name: "checkpoint", Value: "best", Usage: "best (falls back to last when the run has no best) or last"},
			&cli.StringFlag{Name: "device", Usage: "cpu or gpu: pin the placement while exporting (default: TensorFlow's choice)"},
			&cli.StringFlag{Name: "gpus", Usage: "the GPUs this process may use, e.g. 0 (default: all)"},
			formatFlag("text", "json"),
		},
		Action: func(c *cli.Context) error {
			if c.Args().Len() != 1 || c.String("out") == "" {
				return fmt.Errorf("export needs one run folder and --out DIR, e.g. kfash-tf export runs/cs3 --out export/cs3")
			}
			if err := checkFormat(c.String("format"), "text", "json"); err != nil {
				return err
			}
			checkpoint := c.String("checkpoint")
			if checkpoint != "best" && checkpoint != "last" {
				return fmt.Errorf("unknown --checkpoint %q: use best or last", checkpoint)
			}
			if !c.IsSet("checkpoint") {
				checkpoint = "" // best, or last when there is no best
			}
			if c.Int64("version") < 1 {
				return fmt.Errorf("--version must be a positive number, got %d", c.Int64("version"))
			}
			runDir := c.Args().First()
			res, err := graphs.ExportSavedModel(runDir, c.String("out"), graphs.ExportOptions{
				Checkpoint: checkpoint,
				Version:    c.Int64("version"),
				Session:    runs.SessionConfig{Device: c.String("device"), GPUs: c.String("gpus")},
				Program:    version,
			})
			if err != nil {
				return err
			}
			for _, note := range res.Notes {
				fmt.Fprintln(c.App.ErrWriter, note)
			}
			return printExport(c, runDir, c.Int64("version"), res)
		},
	}
}

func printExport(c *cli.Context, runDir string, version int64, res graphs.ExportResult) error {
	_, cfg, err := runs.Open(runDir)
	if err != nil {
		return err
	}
	rep := exportReport{Run: runDir, Dir: res.Dir, Version: version, Network: res.Network, Classes: res.Classes,
		InputSize: cfg.InputSize, Checkpoint: res.Checkpoint, Epoch: res.State.Epoch, Step: res.State.Step,
		Metrics: res.State.Metrics, Variables: res.Variables, CheckDiff: res.CheckDiff,
		Signatures: []string{graphs.SignatureImages, graphs.SignatureBytes, graphs.SignatureExplain}}
	w := out(c)
	if c.String("format") == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	var metrics []string
	for k, v := range res.State.Metrics {
		metrics = append(metrics, fmt.Sprintf("%s %.4g", k, v))
	}
	sort.Strings(metrics)
	s, k := cfg.InputSize, len(res.Classes)
	fmt.Fprintf(w, "exported %s (%s, checkpoint %s: epoch %d", runDir, res.Network, res.Checkpoint, res.State.Epoch)
	if len(metrics) > 0 {
		fmt.Fprintf(w, ", %s", strings.Join(metrics, ", "))
	}
	fmt.Fprintf(w, ") to %s\n", res.Dir)
	fmt.Fprintf(w, "  %-16s images: float32 [-1,%d,%d,3] RGB 0-255\n", graphs.SignatureImages, s, s)
	fmt.Fprintf(w, "  %-16s image_bytes: string [-1] (JPEG, PNG, GIF, BMP)\n", graphs.SignatureBytes)
	fmt.Fprintf(w, "  %-16s probabilities float32 [-1,%d], classes int64 [-1], class_names string [-1] (%s)\n",
		"outputs:", k, strings.Join(res.Classes, ", "))
	fmt.Fprintf(w, "  %-16s images → probabilities, classes and the Grad-CAM map float32 [-1,%d,%d] of the predicted class\n",
		graphs.SignatureExplain, s, s)
	fmt.Fprintf(w, "  %-16s %d variables; TensorFlow loads it and its signatures match the run (max |Δp| %.2g)\n",
		"checked:", res.Variables, res.CheckDiff)
	base, _ := filepath.Abs(filepath.Dir(res.Dir))
	fmt.Fprintf(w, "serve it: kfash-tf serve %s   or   tensorflow_model_server --model_base_path=%s --model_name=%s\n",
		filepath.Dir(res.Dir), base, filepath.Base(base))
	return nil
}
