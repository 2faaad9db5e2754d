package sweep

import (
	"bytes"
	"fmt"
	"math"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/kfash-tf/kfash-tf/app/settings"
	"github.com/kfash-tf/kfash-tf/models/catalog"
)

// A sweep plan is a YAML file:
//
//	data: photos/                # optional; --data overrides
//	classes: [resort, retro]     # optional; --classes overrides
//	defaults:                    # train settings shared by every run
//	  epochs: 30
//	runs:                        # one entry per run, or a grid when values are lists
//	  - network: [vgg8, vgg10]
//	    lr: [1e-4, 3e-4]
//
// Keys are `kfash-tf train` flag names without dashes (the table of package
// settings). A run's settings are the defaults overridden by its entry;
// lists expand to the cartesian product.

// planKeysOnlyAtTop are train flags a plan sets once for the whole sweep:
// every run of a sweep trains on the same data, so that they compare.
var planKeysOnlyAtTop = map[string]bool{"data": true, "classes": true}

// planKeysForbidden are train flags the sweep sets itself.
var planKeysForbidden = map[string]string{
	"out":    "the sweep names each run folder from its settings (use the sweep's --out for the parent folder)",
	"resume": "the sweep resumes interrupted runs by itself",
	// A sweep's runs are single processes, one after another.
	"cluster":            clusterInPlan,
	"task":               clusterInPlan,
	"collective-timeout": clusterInPlan,
	"lr-scale":           clusterInPlan,
}

const clusterInPlan = "a sweep trains each run as one process; train a run on several tasks with 'kfash-tf cluster-local N -- train …' or --cluster on each machine"

// planSetting is one train flag of a run, with its value in canonical form
// (numbers parsed and reprinted, so 1e-4 and 0.0001 are the same run).
type planSetting struct {
	Flag, Value string
}

// plan is a parsed plan file, before expansion.
type plan struct {
	File     string // for messages: the plan file, or "preset seed"
	Data     string
	Classes  []string
	defaults []planEntry // the defaults mapping as one entry (or none)
	entries  []planEntry
}

// planEntry is a mapping of train flags, each with one or more values.
type planEntry struct {
	Line int
	Keys []planKey // in the order written
}

// planKey is one key of an entry with its values (several: a grid axis).
type planKey struct {
	Flag   string
	Values []string // canonical
	Line   int
}

// parsePlan reads a plan file's YAML; file names it in messages.
func parsePlan(src []byte, file string) (plan, error) {
	p := plan{File: file}
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(src))
	if err := dec.Decode(&doc); err != nil {
		return p, fmt.Errorf("%s: %v", file, yamlError(err))
	}
	if len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return p, fmt.Errorf("%s: a plan is a mapping with 'runs:' (and optional data, classes, defaults)", file)
	}
	top := doc.Content[0]
	sawRuns := false
	for i := 0; i+1 < len(top.Content); i += 2 {
		k, v := top.Content[i], top.Content[i+1]
		at := fmt.Sprintf("%s line %d", file, k.Line)
		switch k.Value {
		case "data":
			if v.Kind != yaml.ScalarNode || v.Value == "" {
				return p, fmt.Errorf("%s: data must be a folder path", at)
			}
			p.Data = v.Value
		case "classes":
			classes, err := scalarList(v)
			if err != nil || len(classes) == 0 {
				return p, fmt.Errorf("%s: classes must be a list of class folder names (or one comma-separated string)", at)
			}
			for _, c := range classes {
				p.Classes = append(p.Classes, settings.SplitList(c)...)
			}
		case "defaults":
			e, err := parseEntry(v, file)
			if err != nil {
				return p, err
			}
			p.defaults = []planEntry{e}
		case "runs":
			sawRuns = true
			if v.Kind != yaml.SequenceNode || len(v.Content) == 0 {
				return p, fmt.Errorf("%s: runs must be a list of runs (each a mapping with network: and train settings)", at)
			}
			for _, item := range v.Content {
				e, err := parseEntry(item, file)
				if err != nil {
					return p, err
				}
				p.entries = append(p.entries, e)
			}
		default:
			hint := ""
			if _, isFlag := settings.Lookup(k.Value); isFlag {
				hint = " (train settings go under defaults: or in a run)"
			}
			return p, fmt.Errorf("%s: unknown key %q: a plan has data, classes, defaults and runs%s", at, k.Value, hint)
		}
	}
	if !sawRuns {
		return p, fmt.Errorf("%s: no 'runs:' list: nothing to sweep", file)
	}
	return p, nil
}

// yamlError shortens yaml.v3's messages ("yaml: line 3: ...").
func yamlError(err error) string {
	return strings.TrimPrefix(err.Error(), "yaml: ")
}

// parseEntry reads a mapping of train flags (a run or the defaults).
func parseEntry(n *yaml.Node, file string) (planEntry, error) {
	e := planEntry{Line: n.Line}
	if n.Kind != yaml.MappingNode {
		return e, fmt.Errorf("%s line %d: a run is a mapping of train settings (network: NAME, lr: 1e-4, ...)", file, n.Line)
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		at := fmt.Sprintf("%s line %d", file, k.Line)
		flag := strings.TrimLeft(k.Value, "-")
		if seen[flag] {
			return e, fmt.Errorf("%s: %q given twice", at, flag)
		}
		seen[flag] = true
		def, known := settings.Lookup(flag)
		switch {
		case flag == "network":
		case !known:
			return e, fmt.Errorf("%s: unknown key %q: not a 'kfash-tf train' flag (see 'kfash-tf train --help')", at, k.Value)
		case planKeysForbidden[flag] != "":
			return e, fmt.Errorf("%s: %q cannot be in a plan: %s", at, flag, planKeysForbidden[flag])
		case planKeysOnlyAtTop[flag]:
			return e, fmt.Errorf("%s: %q is set once for the whole sweep: put it at the top of the plan (or give --%s)", at, flag, flag)
		}
		raw, err := scalarList(v)
		if err != nil {
			return e, fmt.Errorf("%s: %s: %v", at, flag, err)
		}
		if len(raw) == 0 {
			return e, fmt.Errorf("%s: %s: an empty list makes no runs", at, flag)
		}
		key := planKey{Flag: flag, Line: k.Line}
		for _, r := range raw {
			val, err := canonicalValue(flag, def.Kind, r)
			if err != nil {
				return e, fmt.Errorf("%s: %s: %v", at, flag, err)
			}
			for _, prev := range key.Values {
				if prev == val {
					return e, fmt.Errorf("%s: %s lists %s twice", at, flag, val)
				}
			}
			key.Values = append(key.Values, val)
		}
		e.Keys = append(e.Keys, key)
	}
	return e, nil
}

// scalarList returns a scalar node's value, or a list of scalars' values.
func scalarList(n *yaml.Node) ([]string, error) {
	switch n.Kind {
	case yaml.ScalarNode:
		return []string{n.Value}, nil
	case yaml.SequenceNode:
		var out []string
		for _, c := range n.Content {
			if c.Kind != yaml.ScalarNode {
				return nil, fmt.Errorf("a list may hold only single values")
			}
			out = append(out, c.Value)
		}
		return out, nil
	}
	return nil, fmt.Errorf("give a value or a list of values")
}

// canonicalValue checks v, a value of flag (of kind k) or of network,
// and reprints it, so that equal settings give equal arguments and folder
// names.
func canonicalValue(flag string, k settings.Kind, v string) (string, error) {
	v = strings.TrimSpace(v)
	if flag == "network" {
		spec, err := catalog.Get(v)
		if err != nil {
			return "", err
		}
		return spec.Name, nil
	}
	switch k {
	case settings.Int, settings.Int64:
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return "", fmt.Errorf("%q is not a whole number", v)
		}
		return strconv.FormatInt(n, 10), nil
	case settings.Float:
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return "", fmt.Errorf("%q is not a number", v)
		}
		return compactFloat(f), nil
	case settings.Bool:
		b, err := strconv.ParseBool(v)
		if err != nil {
			return "", fmt.Errorf("%q is not true or false", v)
		}
		return strconv.FormatBool(b), nil
	}
	if v == "" {
		return "", fmt.Errorf("empty value")
	}
	return v, nil
}

// compactFloat prints f shortly and exactly: 1e-4, 5e-5, 0.8, 128.
func compactFloat(f float64) string {
	if f == 0 {
		return "0"
	}
	if a := math.Abs(f); a < 0.01 || a >= 1e6 {
		s := strconv.FormatFloat(f, 'e', -1, 64) // 1e-04
		mant, exp, _ := strings.Cut(s, "e")
		sign := ""
		if strings.HasPrefix(exp, "-") {
			sign = "-"
		}
		exp = strings.TrimLeft(exp, "+-0")
		return mant + "e" + sign + exp
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}

// overrides are command-line settings that replace the plan's.
type overrides struct {
	Epochs int // > 0: every run's epochs
}

// expand turns the plan into its runs: each entry merged over the
// defaults, lists expanded to the cartesian product (the first key written
// varies slowest), each run named from its settings. Two runs with the
// same name are an error.
func (p plan) expand(o overrides) ([]plannedRun, error) {
	var runs []plannedRun
	byName := map[string]plannedRun{}
	for i, e := range p.entries {
		keys := mergeKeys(p.defaults, e)
		network := -1
		for k, key := range keys {
			if key.Flag == "network" {
				network = k
			}
		}
		if network < 0 {
			return nil, fmt.Errorf("%s line %d: run %d has no network: (one of %s)", p.File, e.Line, i+1, strings.Join(catalog.Names(), ", "))
		}
		own := map[string]bool{}
		for _, k := range e.Keys {
			own[k.Flag] = true
		}
		for _, combo := range cartesian(keys) {
			r := plannedRun{Entry: i + 1, Line: e.Line}
			named := []planSetting{}
			for k, key := range keys {
				val := key.Values[combo[k]]
				if key.Flag == "network" {
					r.Network = val
					continue
				}
				s := planSetting{Flag: key.Flag, Value: val}
				r.Settings = append(r.Settings, s)
				if own[key.Flag] || len(key.Values) > 1 { // a grid in the defaults names its runs too
					named = append(named, s)
				}
			}
			if o.Epochs > 0 {
				r.Settings = setSetting(r.Settings, "epochs", strconv.Itoa(o.Epochs))
			}
			sortSettings(r.Settings)
			sortSettings(named)
			r.Name = runName(r.Network, named)
			if prev, dup := byName[r.Name]; dup {
				return nil, fmt.Errorf("%s: runs %d (line %d) and %d (line %d) would both be run folder %q: make their settings differ",
					p.File, prev.Entry, prev.Line, r.Entry, r.Line, r.Name)
			}
			byName[r.Name] = r
			runs = append(runs, r)
		}
	}
	return runs, nil
}

// mergeKeys returns the entry's keys, then the defaults it does not set.
func mergeKeys(defaults []planEntry, e planEntry) []planKey {
	keys := append([]planKey(nil), e.Keys...)
	set := map[string]bool{}
	for _, k := range keys {
		set[k.Flag] = true
	}
	for _, d := range defaults {
		for _, k := range d.Keys {
			if !set[k.Flag] {
				keys = append(keys, k)
			}
		}
	}
	return keys
}

// cartesian lists every combination of value indices of keys, the first
// key varying slowest.
func cartesian(keys []planKey) [][]int {
	combos := [][]int{{}}
	for _, k := range keys {
		var next [][]int
		for _, c := range combos {
			for v := range k.Values {
				next = append(next, append(append([]int(nil), c...), v))
			}
		}
		combos = next
	}
	return combos
}

func setSetting(s []planSetting, flag, value string) []planSetting {
	for i := range s {
		if s[i].Flag == flag {
			s[i].Value = value
			return s
		}
	}
	return append(s, planSetting{Flag: flag, Value: value})
}
