// Package app holds kfash-tf's command-line commands: each file one command,
// each command a thin layer over models, graphs and augment.
package app

import (
	"fmt"
	"io"
	"os"

	"github.com/urfave/cli/v2"
)

// New returns the kfash-tf command-line application. version is the
// program's version, set at build time.
func New(version string) *cli.App {
	a := &cli.App{
		Name:    "kfash-tf",
		Usage:   "train, evaluate, export and serve fashion-style CNNs on TensorFlow's C library",
		Version: version,
		Description: "kfash-tf reproduces the K-Fashion style study (Resort / Retro / Sporty) with six\n" +
			"networks built op by op in Go: alexnet, vgg8, vgg10, googlenet, resnet34, densenet.\n\n" +
			"The path through it, a command a step:\n" +
			"  data      get photos into Train/ Validation/ [Test/] class folders (K-Fashion, Fashion-MNIST)\n" +
			"  train     one network (or sweep: many runs), with checkpoints; Ctrl-C and --resume\n" +
			"  evaluate  and report: accuracy, per-class tables, curves, the model-selection table\n" +
			"  export    a SavedModel; serve it over HTTP, or predict from the command line\n\n" +
			"First time here? 'make demo' in the source folder runs every step on Fashion-MNIST.\n" +
			"Every command has --help with examples.",
		HideVersion:          false,
		EnableBashCompletion: true,
		// In the order of the work: data in, training, judging, shipping.
		Commands: []*cli.Command{
			modelsCommand(),
			dataCommand(),
			trainCommand(version),
			clusterLocalCommand(),
			sweepCommand(),
			evaluateCommand(),
			reportCommand(),
			predictCommand(),
			explainCommand(),
			exportCommand(version),
			serveCommand(),
			benchCommand(),
			versionCommand(version),
		},
		Writer:    os.Stdout,
		ErrWriter: os.Stderr,
	}
	// One check of every numeric flag, before any command writes anything.
	checkFlagsOn(a.Commands, "")
	return a
}

// Main runs the application on args and returns the process exit status,
// printing any error as one line on stderr.
func Main(version string, args []string) int {
	a := New(version)
	if err := a.Run(flagsFirst(a, args)); err != nil {
		err = inFlagTerms(err) // e.g. export's --device gpu without a GPU
		if msg := err.Error(); msg != "" {
			fmt.Fprintf(os.Stderr, "kfash-tf: %s\n", msg)
		}
		if coder, ok := err.(cli.ExitCoder); ok && coder.ExitCode() != 0 {
			return coder.ExitCode()
		}
		return 1
	}
	return 0
}

// formatFlag is the --format flag shared by commands that print results.
func formatFlag(choices ...string) *cli.StringFlag {
	return &cli.StringFlag{Name: "format", Value: choices[0], Usage: "output format: " + joinOr(choices)}
}

// checkFormat returns an error naming the choices when f is not one of them.
func checkFormat(f string, choices ...string) error {
	for _, c := range choices {
		if f == c {
			return nil
		}
	}
	return fmt.Errorf("unknown --format %q: use %s", f, joinOr(choices))
}

func joinOr(s []string) string {
	out := ""
	for i, c := range s {
		switch {
		case i == 0:
		case i == len(s)-1:
			out += " or "
		default:
			out += ", "
		}
		out += c
	}
	return out
}

// out returns the writer a command prints its results to.
func out(c *cli.Context) io.Writer { return c.App.Writer }
