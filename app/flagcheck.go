package app

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"
)

// This file checks every numeric flag of every command before the command
// runs, so that no out-of-range or NaN value gets as far as a run folder:
// a NaN --label-smoothing used to fail only when config.json was written
// (json cannot encode NaN), leaving an empty run folder behind, and
// --label-smoothing 2 trained a network to chance.

// numRange is the set of accepted values of a numeric flag: an interval
// whose ends may be open, and may be infinite.
type numRange struct {
	lo, hi         float64
	loOpen, hiOpen bool
}

// atLeast accepts [lo, ∞).
func atLeast(lo float64) numRange { return numRange{lo: lo, hi: math.Inf(1)} }

// positive accepts (0, ∞).
func positive() numRange { return numRange{lo: 0, hi: math.Inf(1), loOpen: true} }

// between accepts [lo, hi].
func between(lo, hi float64) numRange { return numRange{lo: lo, hi: hi} }

// fraction accepts [0, 1): rates such as dropout and label smoothing, for
// which 1 would leave nothing to learn from.
func fraction() numRange { return numRange{lo: 0, hi: 1, hiOpen: true} }

// contains reports whether v is in r; NaN is in no range.
func (r numRange) contains(v float64) bool {
	if math.IsNaN(v) {
		return false
	}
	if v < r.lo || (r.loOpen && v == r.lo) {
		return false
	}
	return v < r.hi || (!r.hiOpen && v == r.hi)
}

// String is the requirement in words, e.g. "must be in [0, 1)" or "must be
// at least 1".
func (r numRange) String() string {
	switch {
	case math.IsInf(r.hi, 1) && !r.loOpen && r.lo == 0:
		return "must not be negative"
	case math.IsInf(r.hi, 1) && !r.loOpen:
		return "must be at least " + formatNum(r.lo)
	case math.IsInf(r.hi, 1) && r.lo == 0:
		return "must be a positive number"
	case math.IsInf(r.hi, 1):
		return "must be greater than " + formatNum(r.lo)
	}
	open, closeB := "[", "]"
	if r.loOpen {
		open = "("
	}
	if r.hiOpen {
		closeB = ")"
	}
	return fmt.Sprintf("must be in %s%s, %s%s", open, formatNum(r.lo), formatNum(r.hi), closeB)
}

// formatNum spells v as typed: whole numbers in full (1073741824, not
// 1.073741824e+09), others in the shortest form.
func formatNum(v float64) string {
	if v == math.Trunc(v) && math.Abs(v) < 1e15 {
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

// Limits shared by several commands. Goroutine and thread counts are
// bounded so that a typo (--workers 1000000) is an error rather than a
// machine brought down by a million goroutines each holding an image.
var (
	workersRange = between(1, 1024)
	threadsRange = between(0, 4096)
	batchRange   = atLeast(1)
)

// flagRanges are the accepted values of the numeric flags, by command path
// (as typed: "data stats") and flag name. Flags not listed accept any
// finite number. Serve checks its own flags (see serveConfig) and export
// its --version, with messages their tests expect.
var flagRanges = map[string]map[string]numRange{
	"train": {
		"epochs": atLeast(1), "batch-size": batchRange,
		"lr": positive(), "weight-decay": atLeast(0), "momentum": fraction(),
		"warmup-epochs": atLeast(0), "step-epochs": atLeast(1),
		// A step decay multiplies the rate by gamma: above 1 it would
		// grow without bound.
		"gamma":     numRange{lo: 0, hi: 1, loOpen: true},
		"clip-norm": atLeast(0), "label-smoothing": fraction(), "dropout": fraction(),
		"patience": atLeast(0), "workers": workersRange, "prefetch": between(0, 1024),
		// MiB, shifted into bytes: the bound keeps the shift from overflowing.
		"cache-mb":         between(0, 1<<30),
		"intra-op-threads": threadsRange, "inter-op-threads": threadsRange,
	},
	"sweep":    {"epochs": atLeast(1)},
	"evaluate": {"batch-size": batchRange},
	"predict":  {"top": atLeast(1), "batch-size": batchRange},
	"models":   {"classes": between(1, 1e6)},
	"models show": {
		"classes": between(1, 1e6), "dropout": fraction(), "depth": atLeast(0),
	},
	"data fashion-mnist": {
		"val-fraction": fraction(), "train-limit": atLeast(0), "workers": workersRange,
	},
	"data import-kfashion": {
		"train-per-class": atLeast(0), "val-per-class": atLeast(0), "workers": workersRange,
	},
	"data stats": {"max-pixels": maxPixelsRange},
	"bench": {
		"batch": batchRange, "infer-batch": batchRange, "warmup": atLeast(0), "steps": atLeast(1),
		"min-seconds": atLeast(0), "weight-decay": atLeast(0),
		"intra-op-threads": threadsRange, "inter-op-threads": threadsRange,
	},
	"bench matmul": {
		"size": between(1, 1<<16), "warmup": atLeast(0), "steps": atLeast(1),
		"min-seconds": atLeast(0), "intra-op-threads": threadsRange,
	},
	"bench pipeline": {"workers": workersRange, "batch": batchRange, "min-seconds": atLeast(0)},
}

// maxPixelsRange bounds --max-pixels: at least one pixel, and at most 1e15
// so that the value converts to an int64 exactly.
var maxPixelsRange = between(1, 1e15)

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
func checkFlags(c *cli.Context, ranges map[string]numRange) error {
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
				return fmt.Errorf("--%s %s: must be a finite number", name, formatNum(v))
			case limited && !r.contains(v):
				return fmt.Errorf("--%s %s: %s", name, formatNum(v), r)
			}
		}
	}
	return nil
}
