package sweep

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/kfash-tf/kfash-tf/app/settings"
	"github.com/kfash-tf/kfash-tf/models/catalog"
)

func expandText(t *testing.T, src string, o overrides) []plannedRun {
	t.Helper()
	p, err := parsePlan([]byte(src), "plan.yaml")
	if err != nil {
		t.Fatal(err)
	}
	runs, err := p.expand(o)
	if err != nil {
		t.Fatal(err)
	}
	return runs
}

func runNames(runs []plannedRun) []string {
	var names []string
	for _, r := range runs {
		names = append(names, r.Name)
	}
	return names
}

func TestSweepPlanGridExpansion(t *testing.T) {
	cases := []struct {
		name string
		plan string
		want []string
	}{
		{"one run", `
runs:
  - network: vgg8
    lr: 0.0003
`, []string{"vgg8-lr3e-4"}},
		{"grid, first key slowest, defaults not named", `
defaults:
  epochs: 30
  augment: double
runs:
  - network: alexnet
    batch-size: 128
    optimizer: adam
    lr: 1e-4
    weight-decay: [1e-4, 1e-3]
    dropout: [0.6, 0.8]
  - network: [vgg8, vgg10]
    optimizer: adamw
`, []string{
			"alexnet-b128-adam-lr1e-4-wd1e-4-do0.6", "alexnet-b128-adam-lr1e-4-wd1e-4-do0.8",
			"alexnet-b128-adam-lr1e-4-wd1e-3-do0.6", "alexnet-b128-adam-lr1e-4-wd1e-3-do0.8",
			"vgg8-adamw", "vgg10-adamw"}},
		{"names in canonical order whatever the written order", `
runs:
  - dropout: 0.5
    lr: [1e-3, 2e-3]
    network: googlenet
    batch-size: 32
`, []string{"googlenet-b32-lr1e-3-do0.5", "googlenet-b32-lr2e-3-do0.5"}},
		{"a grid in the defaults is named", `
defaults:
  seed: [1, 2]
runs:
  - network: vgg8
`, []string{"vgg8-seed1", "vgg8-seed2"}},
		{"execution settings, booleans and strings", `
runs:
  - network: VGG8
    workers: 3
    epochs: 7
    no-decay-bn-bias: [true, false]
    select: val_loss
    schedule: cosine
`, []string{"vgg8-nodecaybn-cosine-selval_loss", "vgg8-cosine-selval_loss"}},
		{"unsafe characters are replaced", `
runs:
  - network: vgg8
    device: gpu
    normalize: "a/b c"
`, []string{"vgg8-norma_b_c"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := runNames(expandText(t, c.plan, overrides{}))
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("runs %q\nwant %q", got, c.want)
			}
		})
	}
}

func TestSweepPlanSettingsAndArgs(t *testing.T) {
	runs := expandText(t, `
data: photos
classes: [a, b]
defaults:
  epochs: 30
  augment: double
runs:
  - network: alexnet
    weight-decay: 0.001
    lr: 1e-4
    batch-size: 128
`, overrides{})
	if len(runs) != 1 {
		t.Fatalf("%d runs, want 1", len(runs))
	}
	r := runs[0]
	got := r.trainArgs("runs/x/"+r.Name, "photos", []string{"a", "b"})
	want := []string{"train", "alexnet", "--data", "photos", "--classes", "a,b", "--out", "runs/x/alexnet-b128-lr1e-4-wd1e-3",
		"--batch-size=128", "--lr=1e-4", "--weight-decay=1e-3", "--epochs=30", "--augment=double"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("train args\n%q\nwant\n%q", got, want)
	}
	if got := r.resumeArgs("d", 30); !reflect.DeepEqual(got, []string{"train", "--resume", "d"}) {
		t.Errorf("resume args with the same epochs: %q", got)
	}
	if got := r.resumeArgs("d", 10); !reflect.DeepEqual(got, []string{"train", "--resume", "d", "--epochs", "30"}) {
		t.Errorf("resume args extending the run: %q", got)
	}
}

func TestSweepPlanEpochs(t *testing.T) {
	const plan = `
runs:
  - network: vgg8
  - network: vgg10
    epochs: 4
  - network: googlenet
    recipe: seed
`
	cases := []struct {
		name     string
		override int
		want     []int
	}{
		{"plan, train default, recipe", 0, []int{int(settings.Default("epochs").Int), 4, 100}},
		{"--epochs overrides every run", 2, []int{2, 2, 2}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			runs := expandText(t, plan, overrides{Epochs: c.override})
			var got []int
			for _, r := range runs {
				got = append(got, r.epochs())
				args := strings.Join(r.trainArgs("o", "d", nil), " ")
				if c.override > 0 && !strings.Contains(args, fmt.Sprintf("--epochs=%d", c.override)) {
					t.Errorf("%s: args %s lack the override", r.Name, args)
				}
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("epochs %v, want %v", got, c.want)
			}
			// The epochs never change a run's name: --epochs extends a run.
			if names := runNames(runs); !reflect.DeepEqual(names, []string{"vgg8", "vgg10", "googlenet-recipeseed"}) {
				t.Errorf("names %q", names)
			}
		})
	}
}

// The seed preset is the spec's table of nine runs ("Training recipes of
// the study"), and the registry's recipe of each network is one of them.
func TestSweepSeedPreset(t *testing.T) {
	p, err := parsePlan([]byte(presets()["seed"]), "preset seed")
	if err != nil {
		t.Fatal(err)
	}
	runs, err := p.expand(overrides{})
	if err != nil {
		t.Fatal(err)
	}
	type row struct {
		network, batch, optimizer, lr, wd, dropout string
	}
	want := []row{
		{"alexnet", "128", "adam", "1e-4", "1e-4", "0.6"},
		{"alexnet", "128", "adam", "1e-4", "1e-4", "0.8"},
		{"alexnet", "128", "adam", "1e-4", "1e-3", "0.8"},
		{"vgg8", "128", "adamw", "1e-4", "0", ""},
		{"vgg10", "128", "adamw", "1e-4", "0", ""},
		{"googlenet", "32", "adamw", "5e-5", "5e-3", "0.4"},
		{"googlenet", "64", "adamw", "5e-5", "5e-3", "0.4"},
		{"resnet34", "128", "adam", "1e-4", "1e-4", ""},
		{"densenet", "64", "adam", "1e-4", "1e-4", ""},
	}
	if len(runs) != len(want) {
		t.Fatalf("%d runs, want %d: %q", len(runs), len(want), runNames(runs))
	}
	names := map[string]bool{}
	for i, r := range runs {
		get := func(f string) string { v, _ := r.setting(f); return v }
		got := row{r.Network, get("batch-size"), get("optimizer"), get("lr"), get("weight-decay"), get("dropout")}
		if got != want[i] {
			t.Errorf("run %d = %+v, want %+v", i+1, got, want[i])
		}
		if r.epochs() != 100 || get("augment") != "double" {
			t.Errorf("%s: %d epochs, augment %q; want 100, double", r.Name, r.epochs(), get("augment"))
		}
		if names[r.Name] {
			t.Errorf("name %s twice", r.Name)
		}
		names[r.Name] = true
	}
	if runs[2].Name != "alexnet-b128-adam-lr1e-4-wd1e-3-do0.8" || runs[3].Name != "vgg8-b128-adamw-lr1e-4-wd0" {
		t.Errorf("names %q", runNames(runs))
	}
	for _, spec := range catalog.All() {
		rc := spec.Recipe
		found := false
		for _, r := range runs {
			get := func(f string) string { v, _ := r.setting(f); return v }
			drop, _ := strconv.ParseFloat(get("dropout"), 32)
			if !spec.HasDrop {
				drop = 0
			}
			if r.Network == spec.Name && get("batch-size") == fmt.Sprint(rc.BatchSize) && get("optimizer") == rc.Optimizer &&
				get("lr") == compactFloat(rc.LR) && get("weight-decay") == compactFloat(rc.WeightDecay) &&
				float32(drop) == rc.Dropout && r.epochs() == rc.Epochs {
				found = true
			}
		}
		if !found {
			t.Errorf("no preset run has %s's registry recipe %+v", spec.Name, rc)
		}
	}
	// --epochs 1: the quick pass keeps the nine runs and their names.
	quick, err := p.expand(overrides{Epochs: 1})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(runNames(quick), runNames(runs)) || quick[0].epochs() != 1 {
		t.Errorf("quick pass: %q, %d epochs", runNames(quick), quick[0].epochs())
	}
}

func TestSweepPlanErrors(t *testing.T) {
	cases := []struct {
		name string
		plan string
		want []string // all in the message
	}{
		{"unknown key in a run", "runs:\n  - network: vgg8\n    learning-rate: 1e-3\n", []string{`"learning-rate"`, "plan.yaml", "line 3"}},
		{"unknown key in defaults", "defaults:\n  epoch: 3\nruns:\n  - network: vgg8\n", []string{`"epoch"`, "line 2"}},
		{"unknown top-level key", "runs:\n  - network: vgg8\nlr: 1e-3\n", []string{`"lr"`, "line 3", "defaults"}},
		{"out is the sweep's", "runs:\n  - network: vgg8\n    out: x\n", []string{`"out"`, "line 3"}},
		{"resume is the sweep's", "runs:\n  - network: vgg8\n    resume: x\n", []string{`"resume"`}},
		{"no cluster in a sweep", "runs:\n  - network: vgg8\n    cluster: 127.0.0.1:1,127.0.0.1:2\n", []string{`"cluster"`, "cluster-local"}},
		{"no lr-scale in a sweep", "defaults:\n  lr-scale: linear\nruns:\n  - network: vgg8\n", []string{`"lr-scale"`, "one process"}},
		{"data only at the top", "runs:\n  - network: vgg8\n    data: x\n", []string{`"data"`, "top"}},
		{"not a number", "runs:\n  - network: vgg8\n    lr: fast\n", []string{"lr", `"fast"`, "line 3"}},
		{"not a whole number", "runs:\n  - network: vgg8\n    batch-size: 12.5\n", []string{"batch-size", "12.5"}},
		{"unknown network", "runs:\n  - network: lenet\n", []string{"lenet", "vgg8", "line 2"}},
		{"no network", "runs:\n  - lr: 1e-3\n", []string{"no network", "line 2"}},
		{"no runs", "defaults:\n  lr: 1e-3\n", []string{"runs"}},
		{"empty list", "runs:\n  - network: vgg8\n    lr: []\n", []string{"lr", "empty"}},
		{"nested list", "runs:\n  - network: vgg8\n    lr: [[1e-3]]\n", []string{"lr", "line 3"}},
		{"value listed twice", "runs:\n  - network: vgg8\n    lr: [1e-3, 0.001]\n", []string{"lr", "twice"}},
		{"not YAML", "runs: [\n", []string{"plan.yaml"}},
		{"not a mapping", "- vgg8\n", []string{"plan.yaml", "mapping"}},
		{"same run twice", "runs:\n  - network: vgg8\n    lr: 1e-3\n  - network: vgg8\n    lr: 0.001\n",
			[]string{"vgg8-lr1e-3", "line 2", "line 4"}},
		{"names collide through unnamed settings", "runs:\n  - network: vgg8\n    workers: [1, 2]\n", []string{"vgg8", "would both be"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, err := parsePlan([]byte(c.plan), "plan.yaml")
			if err == nil {
				_, err = p.expand(overrides{})
			}
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestSweepCompactFloat(t *testing.T) {
	cases := map[float64]string{1e-4: "1e-4", 5e-5: "5e-5", 5e-3: "5e-3", 0.8: "0.8", 0: "0",
		128: "128", 0.01: "0.01", 2.5e-4: "2.5e-4", 3e7: "3e7", -1e-3: "-1e-3"}
	for in, want := range cases {
		if got := compactFloat(in); got != want {
			t.Errorf("compactFloat(%v) = %q, want %q", in, got, want)
		}
	}
}
