package app

import (
	"errors"
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/kfash-tf/kfash-tf/app/settings"
	"github.com/kfash-tf/kfash-tf/app/sweep"
)

func sweepCommand() *cli.Command {
	return &cli.Command{
		Name:  "sweep",
		Usage: "train a list or grid of runs one after another, resumably",
		Description: "Runs every run of a plan (networks × hyperparameters), one after another, each in\n" +
			"its own folder OUT/NAME named from its settings (alexnet-b128-adam-lr1e-4-wd1e-3-do0.8).\n" +
			"Each run is a 'kfash-tf train' child process: a crash or out-of-memory in one run\n" +
			"does not stop the others.\n\n" +
			"Run the same command again to continue: finished runs are skipped, interrupted or\n" +
			"killed runs resume from their last checkpoint, failed runs are tried again, and a\n" +
			"finished run is extended when --epochs asks for more. Ctrl-C lets the current run\n" +
			"save its checkpoint, then stops the sweep. OUT/sweep.json records the plan and what\n" +
			"became of every run; 'kfash-tf report OUT' compares them.\n\n" +
			"The plan file (YAML; keys are train flag names without dashes):\n" +
			"  data: photos/                 # optional; --data overrides\n" +
			"  classes: [resort, retro, sporty]\n" +
			"  defaults: {epochs: 30, augment: double}\n" +
			"  runs:                         # a list value makes a grid\n" +
			"    - {network: alexnet, batch-size: 128, optimizer: adam, lr: 1e-4, weight-decay: [1e-4, 1e-3]}\n" +
			"    - {network: [vgg8, vgg10], optimizer: adamw}\n\n" +
			"Examples:\n" +
			"  kfash-tf sweep --preset seed --data kfashion/ --dry-run     # the study's nine runs, listed\n" +
			"  kfash-tf sweep --preset seed --data kfashion/               # ... trained, 100 epochs each\n" +
			"  kfash-tf sweep --preset seed --data photos/ --classes t-shirt,pants,shoes --epochs 1   # a quick pass\n" +
			"  kfash-tf sweep --plan grid.yaml --data photos/ --out runs/grid\n" +
			"  kfash-tf report runs/seed --out runs/seed/report",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "plan", Usage: "plan file (YAML): the runs, see above"},
			&cli.StringFlag{Name: "preset", Usage: "a built-in plan: 'seed' (the study's nine runs, 100 epochs, doubling augmentation)"},
			&cli.StringFlag{Name: "data", Usage: "dataset folder (overrides the plan's data:)"},
			&cli.StringFlag{Name: "classes", Usage: "comma-separated classes (overrides the plan's classes:)"},
			&cli.IntFlag{Name: "epochs", DefaultText: "the plan's", Usage: "epochs of every run (overrides the plan; e.g. 1 for a quick pass)"},
			&cli.StringFlag{Name: "out", Usage: "sweep folder holding the run folders and sweep.json (default runs/PLAN, runs/seed for the preset)"},
			&cli.BoolFlag{Name: "dry-run", Usage: "print the runs and what would be done for each, and exit"},
		},
		Action: runSweep,
	}
}

// runSweep turns the flags into sweep options; package sweep does the rest.
func runSweep(c *cli.Context) error {
	if c.Args().Len() > 0 {
		return fmt.Errorf("sweep takes no arguments (got %q): give --plan FILE or --preset seed", c.Args().First())
	}
	o := sweep.Options{
		Plan: c.String("plan"), Preset: c.String("preset"), Data: c.String("data"), Out: c.String("out"),
		DryRun: c.Bool("dry-run"), CommandLine: os.Args[1:], Stdout: c.App.Writer, Stderr: c.App.ErrWriter,
	}
	if c.IsSet("classes") {
		// Given empty, it asks for every class folder, whatever the plan says.
		o.Classes = append([]string{}, settings.SplitList(c.String("classes"))...)
	}
	if c.IsSet("epochs") {
		o.Epochs = c.Int("epochs")
	}
	err := sweep.Run(o)
	if errors.Is(err, sweep.ErrInterrupted) {
		return cli.Exit("", 130) // the message is printed
	}
	return err
}
