package settings

import (
	"flag"
	"reflect"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/kfash-tf/kfash-tf/graphs/runs"
	"github.com/kfash-tf/kfash-tf/models/catalog"
)

// sample is a value of kind k that no default has, spelt as on the command
// line.
func sample(k Kind) (Value, string) {
	switch k {
	case Int, Int64:
		return Value{Int: 7}, "7"
	case Float:
		return Value{Float: 0.25}, "0.25"
	case Bool:
		return Value{Bool: true}, "true"
	}
	return Value{String: "x7"}, "x7"
}

// What a setting stores in a run configuration reads back as given: the
// sweep's check of a run folder compares the plan with exactly what train
// applied.
func TestSettingRecordedReadsBackApplied(t *testing.T) {
	compared := 0
	for _, s := range All() {
		if s.Recorded == nil {
			continue
		}
		if s.Apply == nil {
			t.Errorf("%s: recorded but never applied", s.Name)
			continue
		}
		v, spelt := sample(s.Kind)
		var cfg runs.Config
		s.Apply(&cfg, v)
		if got := s.Recorded(cfg); got != spelt {
			t.Errorf("%s: applied %s, recorded %s", s.Name, spelt, got)
		}
		compared++
	}
	// The settings the sweep compared before the table existed, and init.
	if compared != 13 {
		t.Errorf("%d settings compared by the sweep, want 13", compared)
	}
}

// Each setting's value comes back from its flag, given or not.
func TestSettingFlagGetsValue(t *testing.T) {
	for _, s := range All() {
		set := flag.NewFlagSet("train", flag.ContinueOnError)
		f := s.Flag()
		if err := f.Apply(set); err != nil {
			t.Fatal(err)
		}
		c := cli.NewContext(cli.NewApp(), set, nil)
		if got := s.Get(c); got != s.Default {
			t.Errorf("%s: default %+v, want %+v", s.Name, got, s.Default)
		}
		v, spelt := sample(s.Kind)
		if err := set.Parse([]string{"--" + s.Name + "=" + spelt}); err != nil {
			t.Fatal(err)
		}
		if got := s.Get(c); got != v {
			t.Errorf("--%s=%s: got %+v, want %+v", s.Name, spelt, got, v)
		}
		if (s.Kind == String || s.Kind == Bool) && s.Range != nil {
			t.Errorf("%s: a range on a %v setting", s.Name, s.Kind)
		}
	}
}

func TestSettingLookupAndDefaults(t *testing.T) {
	names := map[string]bool{}
	for _, s := range All() {
		if names[s.Name] {
			t.Errorf("%s twice in the table", s.Name)
		}
		names[s.Name] = true
		if got, ok := Lookup(s.Name); !ok || got.Name != s.Name {
			t.Errorf("Lookup(%q) = %q, %v", s.Name, got.Name, ok)
		}
	}
	if _, ok := Lookup("network"); ok {
		t.Error("network is an argument, not a setting")
	}
	if e := Default("epochs").Int; e != 10 {
		t.Errorf("default epochs %d, want 10", e)
	}
	if len(Flags()) != len(All()) {
		t.Errorf("%d flags for %d settings", len(Flags()), len(All()))
	}
}

func TestSettingRecipe(t *testing.T) {
	e, err := catalog.Get("googlenet")
	if err != nil {
		t.Fatal(err)
	}
	got, err := Recipe(RecipeSeed, e)
	if err != nil {
		t.Fatal(err)
	}
	r := e.Recipe
	want := map[string]Value{"epochs": {Int: int64(r.Epochs)}, "batch-size": {Int: int64(r.BatchSize)},
		"optimizer": {String: r.Optimizer}, "lr": {Float: r.LR}, "weight-decay": {Float: r.WeightDecay},
		"augment": {String: "double"}, "init": {String: "torch"}, "normalize": {String: "none"},
		"schedule": {String: "constant"}, "label-smoothing": {Float: 0}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("seed recipe %+v, want %+v", got, want)
	}
	for name := range got {
		if _, ok := Lookup(name); !ok {
			t.Errorf("the recipe sets %q, no setting", name)
		}
	}
	for _, name := range []string{"", RecipeDefault} {
		if got, err := Recipe(name, e); got != nil || err != nil {
			t.Errorf("recipe %q: %v, %v", name, got, err)
		}
	}
	if _, err := Recipe("fast", e); err == nil || err.Error() != `unknown --recipe "fast": use default or seed` {
		t.Errorf("unknown recipe: %v", err)
	}
}

// The seed recipe must stay the study's whatever the defaults become: it
// pins every setting whose default differs from what the study did.
func TestSeedRecipePinsEveryChangedDefault(t *testing.T) {
	e, err := catalog.Get("vgg8")
	if err != nil {
		t.Fatal(err)
	}
	got, err := Recipe(RecipeSeed, e)
	if err != nil {
		t.Fatal(err)
	}
	study := map[string]Value{"init": {String: "torch"}, "normalize": {String: "none"}, "schedule": {String: "constant"},
		"label-smoothing": {}, "clip-norm": {}, "no-decay-bn-bias": {}, "class-weights": {String: "none"}, "select": {String: "val_acc"}}
	for name, want := range study {
		if v, ok := got[name]; ok {
			if v != want {
				t.Errorf("seed recipe sets %s to %+v, the study's is %+v", name, v, want)
			}
			continue
		}
		if d := Default(name); d != want {
			t.Errorf("the default of %s (%+v) is not the study's (%+v) and the seed recipe does not pin it", name, d, want)
		}
	}
}

// --help lists every recipe.
func TestRecipeUsageListsRecipes(t *testing.T) {
	s, _ := Lookup("recipe")
	for _, name := range RecipeNames() {
		if !strings.Contains(s.Usage, name+" (") {
			t.Errorf("--recipe usage does not list %q: %s", name, s.Usage)
		}
	}
}

func TestSplitList(t *testing.T) {
	if got := SplitList(" a, b,,c ,"); !reflect.DeepEqual(got, []string{"a", "b", "c"}) {
		t.Errorf("%q", got)
	}
	if got := SplitList(" , "); got != nil {
		t.Errorf("%q, want nil", got)
	}
}
