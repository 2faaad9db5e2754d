// Package settings is the one table of `kfash-tf train`'s settings. Each
// setting is a train flag (name, usage, default, type, accepted range), the
// field of a run's configuration (runs.Config) it sets and reads back, and
// a key of a sweep plan (the flag name without dashes). train builds its
// flags and its run configuration from the table, and the sweep parses its
// plans and checks run folders against it, so that the three can never
// disagree about what a setting is.
//
// The package is pure Go (no TensorFlow), so that the sweep builds without
// cgo.
package settings

import (
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/kfash-tf/kfash-tf/graphs/runs"
)

// Kind is the type of a setting's value: it picks the flag's type and how a
// plan's value is parsed.
type Kind int

// The kinds of setting.
const (
	String Kind = iota
	Int         // a whole number held in an int (cli.IntFlag)
	Int64       // a whole number held in an int64 (cli.Int64Flag): the seed
	Float
	Bool
)

// Value is a setting's value, in the field of its Kind (Int for Int and
// Int64).
type Value struct {
	String string
	Int    int64
	Float  float64
	Bool   bool
}

// Setting is one train setting.
type Setting struct {
	// Name is the flag's name without dashes, and the setting's key in a
	// sweep plan.
	Name  string
	Usage string
	Kind  Kind
	// Default is the flag's value when not given (the zero Value: "", 0,
	// false).
	Default Value
	// Range is the values the flag accepts when given; nil accepts any
	// finite number (and is the only choice for String and Bool).
	Range *Range
	// Apply stores v in cfg. It is nil for a setting that is not part of a
	// run's configuration (--out, --prefetch) or that train resolves from
	// the dataset (--classes, --class-weights).
	Apply func(cfg *runs.Config, v Value)
	// Recorded returns the setting as cfg records it, spelt as on the
	// command line, for the sweep's check that a run folder is the run its
	// plan asks for. It is nil for a setting the check leaves out: one a
	// resume may change (--epochs), one that does not change the run
	// (--workers), or one not recorded as given (--class-weights).
	Recorded func(cfg runs.Config) string
}

// Flag is the setting's command-line flag.
func (s Setting) Flag() cli.Flag {
	switch s.Kind {
	case Int:
		return &cli.IntFlag{Name: s.Name, Usage: s.Usage, Value: int(s.Default.Int)}
	case Int64:
		return &cli.Int64Flag{Name: s.Name, Usage: s.Usage, Value: s.Default.Int}
	case Float:
		return &cli.Float64Flag{Name: s.Name, Usage: s.Usage, Value: s.Default.Float}
	case Bool:
		return &cli.BoolFlag{Name: s.Name, Usage: s.Usage, Value: s.Default.Bool}
	}
	return &cli.StringFlag{Name: s.Name, Usage: s.Usage, Value: s.Default.String}
}

// Get returns the setting's flag value in c: as given, else its default.
func (s Setting) Get(c *cli.Context) Value {
	switch s.Kind {
	case Int:
		return Value{Int: int64(c.Int(s.Name))}
	case Int64:
		return Value{Int: c.Int64(s.Name)}
	case Float:
		return Value{Float: c.Float64(s.Name)}
	case Bool:
		return Value{Bool: c.Bool(s.Name)}
	}
	return Value{String: c.String(s.Name)}
}

// Flags returns the flags of every train setting, in --help order.
func Flags() []cli.Flag {
	flags := make([]cli.Flag, len(train))
	for i, s := range train {
		flags[i] = s.Flag()
	}
	return flags
}

// All returns the train settings in --help order.
func All() []Setting { return append([]Setting(nil), train...) }

// Lookup returns the train setting called name (a flag name without
// dashes).
func Lookup(name string) (Setting, bool) {
	for _, s := range train {
		if s.Name == name {
			return s, true
		}
	}
	return Setting{}, false
}

// Default returns the default of the train setting called name; it panics
// on a name that is not in the table, a programming error.
func Default(name string) Value {
	s, ok := Lookup(name)
	if !ok {
		panic("settings: no train setting " + name)
	}
	return s.Default
}

// Ranges returns the accepted range of every numeric train setting that
// has one, by flag name, for the check of every command's flags.
func Ranges() map[string]*Range {
	out := map[string]*Range{}
	for _, s := range train {
		if s.Range != nil {
			out[s.Name] = s.Range
		}
	}
	return out
}

// SplitList splits a comma-separated flag value (--classes a,b) into its
// trimmed, non-empty items; nil when there are none.
func SplitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
