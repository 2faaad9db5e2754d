package sweep

import (
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/kfash-tf/kfash-tf/app/settings"
	"github.com/kfash-tf/kfash-tf/models/catalog"
)

// plannedRun is one run of an expanded plan.
type plannedRun struct {
	Name     string
	Network  string
	Settings []planSetting // canonical order (see settingOrder); network excluded
	// Entry is the number of the `runs` entry it comes from and Line its
	// line in the plan file, for error messages.
	Entry, Line int
}

// setting returns the value of flag in the run's settings.
func (r plannedRun) setting(flag string) (string, bool) {
	for _, s := range r.Settings {
		if s.Flag == flag {
			return s.Value, true
		}
	}
	return "", false
}

// epochs is the number of epochs the run trains for: its setting, else the
// recipe's, else train's default.
func (r plannedRun) epochs() int {
	if v, ok := r.setting("epochs"); ok {
		n, _ := strconv.Atoi(v) // canonical: parsed when the plan was read
		return n
	}
	if name, ok := r.setting("recipe"); ok {
		if e, err := catalog.Get(r.Network); err == nil {
			if recipe, err := settings.Recipe(name, e); err == nil {
				if v, ok := recipe["epochs"]; ok {
					return int(v.Int)
				}
			}
		}
	}
	return int(settings.Default("epochs").Int)
}

// trainArgs are the arguments (after the program name) of the `kfash-tf
// train` command that starts the run fresh in dir.
func (r plannedRun) trainArgs(dir, data string, classes []string) []string {
	args := []string{"train", r.Network, "--data", data}
	if len(classes) > 0 {
		args = append(args, "--classes", strings.Join(classes, ","))
	}
	args = append(args, "--out", dir)
	for _, s := range r.Settings {
		args = append(args, "--"+s.Flag+"="+s.Value)
	}
	return args
}

// resumeArgs are the arguments of the command that continues the run in
// dir, whose config.json says cfgEpochs: a resume keeps the run's
// configuration, may train longer or shorter (--epochs), and takes the
// settings that only concern this process (prefetch, cache) afresh.
func (r plannedRun) resumeArgs(dir string, cfgEpochs int) []string {
	args := []string{"train", "--resume", dir}
	if e := r.epochs(); e != cfgEpochs {
		args = append(args, "--epochs", strconv.Itoa(e))
	}
	for _, f := range []string{"prefetch", "cache-mb"} {
		if v, ok := r.setting(f); ok {
			args = append(args, "--"+f+"="+v)
		}
	}
	return args
}

// settingOrder is the order of settings in names and arguments: the
// study's hyperparameters first, then train's flags in their --help order.
func settingOrder() map[string]int {
	order := map[string]int{}
	for i, f := range []string{"batch-size", "optimizer", "lr", "weight-decay", "dropout"} {
		order[f] = i
	}
	for i, s := range settings.All() {
		if _, ok := order[s.Name]; !ok {
			order[s.Name] = 100 + i
		}
	}
	return order
}

func sortSettings(s []planSetting) {
	order := settingOrder()
	sort.SliceStable(s, func(i, j int) bool { return order[s[i].Flag] < order[s[j].Flag] })
}

// nameParts gives the short form of a setting in a run folder's name; ""
// as the prefix prints the value alone. Settings absent from the map are
// printed as flag name + value.
var nameParts = map[string]string{
	"batch-size": "b", "optimizer": "", "lr": "lr", "weight-decay": "wd", "dropout": "do",
	"momentum": "mom", "label-smoothing": "ls", "schedule": "", "warmup-epochs": "warm", "step-epochs": "step",
	"clip-norm": "clip", "augment": "aug", "normalize": "norm", "class-weights": "cw", "no-decay-bn-bias": "nodecaybn",
	"select": "sel", "patience": "pat",
}

// unnamedSettings change how a run executes or how long it trains, not what
// it is: they stay out of folder names, so that `--epochs` can extend a run
// and a different --workers still finds it.
var unnamedSettings = map[string]bool{
	"epochs": true, "workers": true, "prefetch": true, "cache-mb": true,
	"intra-op-threads": true, "inter-op-threads": true, "device": true, "gpus": true,
}

var unsafeNameChars = regexp.MustCompile(`[^A-Za-z0-9._+-]+`)

// runName is a run folder's name: the network, then the settings of its
// plan entry (the defaults shared by every run stay out), e.g.
// alexnet-b128-adam-lr1e-4-wd1e-3-do0.8.
func runName(network string, named []planSetting) string {
	parts := []string{network}
	for _, s := range named {
		if unnamedSettings[s.Flag] {
			continue
		}
		prefix, ok := nameParts[s.Flag]
		if !ok {
			prefix = s.Flag
		}
		switch s.Value {
		case "true":
			parts = append(parts, prefix)
		case "false": // a boolean flag off is train's default
		default:
			parts = append(parts, prefix+s.Value)
		}
	}
	return strings.Trim(unsafeNameChars.ReplaceAllString(strings.Join(parts, "-"), "_"), ".")
}
