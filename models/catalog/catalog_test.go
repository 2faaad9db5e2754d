package catalog

import (
	"go/parser"
	"go/token"
	"strconv"
	"strings"
	"testing"
)

func TestGetIgnoresCase(t *testing.T) {
	e, err := Get("GoogLeNet")
	if err != nil || e.Name != "googlenet" {
		t.Fatalf("Get(GoogLeNet) = %q, %v", e.Name, err)
	}
}

func TestUnknownNetworkNamesTheKnownOnes(t *testing.T) {
	_, err := Get("nosuchnet")
	if err == nil {
		t.Fatal("no error")
	}
	want := `unknown network "nosuchnet": known networks are alexnet, densenet, googlenet, resnet34, vgg10, vgg8`
	if err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
}

func TestNamesInStudyOrder(t *testing.T) {
	got := strings.Join(Names(), " ")
	if want := "alexnet vgg8 vgg10 googlenet resnet34 densenet"; got != want {
		t.Errorf("Names() = %s, want %s", got, want)
	}
}

// A recipe's dropout rate is meaningful exactly for the networks with dropout
// layers; the sweep presets and train's flags rely on that.
func TestDropoutOnlyWhereNetworkHasIt(t *testing.T) {
	for _, e := range All() {
		if e.HasDrop != (e.Recipe.Dropout > 0) {
			t.Errorf("%s: HasDrop %v with recipe dropout %v", e.Name, e.HasDrop, e.Recipe.Dropout)
		}
	}
}

func TestAllIsACopy(t *testing.T) {
	All()[0].Name = "changed"
	if Names()[0] != "alexnet" {
		t.Error("All() exposes the table")
	}
}

// The package documentation shows the table for readers; it must say what
// the entries say.
func TestDocTableMatchesEntries(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "catalog.go", nil, parser.ParseComments|parser.PackageClauseOnly)
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string][]string{}
	for _, line := range strings.Split(f.Doc.Text(), "\n") {
		if fields := strings.Fields(line); strings.HasPrefix(line, "\t") && len(fields) == 8 && fields[0] != "name" {
			rows[fields[0]] = fields
		}
	}
	if len(rows) != len(entries) {
		t.Errorf("doc table has %d rows, the catalogue %d networks", len(rows), len(entries))
	}
	num := func(s string) float64 {
		if s == "-" {
			return 0
		}
		v, err := strconv.ParseFloat(strings.ReplaceAll(s, ",", ""), 64)
		if err != nil {
			t.Errorf("doc table: %v", err)
		}
		return v
	}
	for _, e := range entries {
		r, ok := rows[e.Name]
		if !ok {
			t.Errorf("doc table has no row %s", e.Name)
			continue
		}
		rc := e.Recipe
		if num(r[1]) != float64(e.InputSize) || num(r[2]) != float64(e.Params) || num(r[3]) != float64(rc.BatchSize) ||
			r[4] != rc.Optimizer || num(r[5]) != rc.LR || num(r[6]) != rc.WeightDecay ||
			float32(num(r[7])) != rc.Dropout || rc.Epochs != 100 {
			t.Errorf("doc row %v differs from entry %+v", r, e)
		}
	}
}
