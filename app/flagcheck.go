package app

import (
	"fmt"
	"math"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/kfash-tf/kfash-tf/app/settings"
)

// This file checks every numeric flag of every command before the command
// runs, so that no out-of-range or NaN value gets as far as a run folder:
// a NaN --label-smoothing used to fail only when config.json was written
// (json cannot encode NaN), leaving an empty run folder behind, and
// --label-smoothing 2 trained a network to chance.

// flagRanges are the accepted values of the numeric flags, by command path
// (as typed: "data stats") and flag name. Flags not listed accept any
// finite number. Serve checks its own flags (see serveConfig) and export
// its --version, with messages their tests expect.
var flagRanges = map[string]map[string]*settings.Range{
	// train's ranges are a column of the settings table, which the
	// sweep's plans share.
	"train":    settings.Ranges(),
	"sweep":    {"epochs": settings.AtLeast(1)},
	"evaluate": {"batch-size": settings.BatchRange},
	"predict":  {"top": settings.AtLeast(1), "batch-size": settings.BatchRange},
	"models":   {"classes": settings.Between(1, 1e6)},
	"models show": {
		"classes": settings.Between(1, 1e6), "dropout": settings.Fraction(), "depth": settings.AtLeast(0),
	},
	"data fashion-mnist": {
		"val-fraction": settings.Fraction(), "train-limit": settings.AtLeast(0), "workers": settings.WorkersRange,
	},
	"data import-kfashion": {
		"train-per-class": settings.AtLeast(0), "val-per-class": settings.AtLeast(0), "workers": settings.WorkersRange,
	},
	"data stats": {"max-pixels": maxPixelsRange},
	"bench": {
		"batch": settings.BatchRange, "infer-batch": settings.BatchRange, "warmup": settings.AtLeast(0), "steps": settings.AtLeast(1),
		"min-seconds": settings.AtLeast(0), "weight-decay": settings.AtLeast(0),
		"intra-op-threads": settings.ThreadsRange, "inter-op-threads": settings.ThreadsRange,
	},
	"bench matmul": {
		"size": settings.Between(1, 1<<16), "warmup": settings.AtLeast(0), "steps": settings.AtLeast(1),
		"min-seconds": settings.AtLeast(0), "intra-op-threads": settings.ThreadsRange,
	},
	"bench pipeline": {"workers": settings.WorkersRange, "batch": settings.BatchRange, "min-seconds": settings.AtLeast(0)},
}

// maxPixelsRange bounds --max-pixels: at least one pixel, and at most 1e15
// so that the value converts to an int64 exactly.
var maxPixelsRange = settings.Between(1, 1e15)

// checkFlagsOn sets, on every command of cmds and their subcommands, a
// Before that runs checkFlags ahead of the command's own Before.
func checkFlagsOn(cmds []*cli.Command, parent string) {
	for _, cmd := range cmds {
		path := strings.TrimSpace(parent + " " + cmd.Name)
		ranges, before := flagRanges[path], cmd.Before
		cmd.Before = func(c *cli.Context) error {
			if err := checkFlags(c, ranges); err != nil {
				return err
			}
			if before != nil {
				return before(c)
			}
			return nil
		}
		checkFlagsOn(cmd.Subcommands, path)
	}
}

// checkFlags checks the flags of c's command that were set: every float
// must be finite, and every flag in ranges within its range. Defaults are
// not checked: some are sentinels (--dropout -1: the network's own).
func checkFlags(c *cli.Context, ranges map[string]*settings.Range) error {
	if c.Command == nil {
		return nil
	}
	for _, f := range c.Command.Flags {
		name := f.Names()[0]
		if !c.IsSet(name) {
			continue
		}
		var vals []float64
		switch f.(type) {
		case *cli.Float64Flag:
			vals = []float64{c.Float64(name)}
		case *cli.Float64SliceFlag:
			vals = c.Float64Slice(name)
		case *cli.IntFlag:
			vals = []float64{float64(c.Int(name))}
		case *cli.Int64Flag:
			vals = []float64{float64(c.Int64(name))}
		case *cli.UintFlag:
			vals = []float64{float64(c.Uint(name))}
		case *cli.Uint64Flag:
			vals = []float64{float64(c.Uint64(name))}
		case *cli.IntSliceFlag:
			for _, v := range c.IntSlice(name) {
				vals = append(vals, float64(v))
			}
		default:
			continue
		}
		r, limited := ranges[name]
		for _, v := range vals {
			switch {
			case math.IsNaN(v) || math.IsInf(v, 0):
				return fmt.Errorf("--%s %s: must be a finite number", name, settings.FormatNum(v))
			case limited && !r.Contains(v):
				return fmt.Errorf("--%s %s: %s", name, settings.FormatNum(v), r)
			}
		}
	}
	return nil
}
