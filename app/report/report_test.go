package report

import (
	"encoding/json"
	"math"
	"strings"
	"testing"

	"github.com/kfash-tf/kfash-tf/graphs/runs"
)

func buildStudy(t *testing.T) (*Report, map[string]Row) {
	t.Helper()
	found, err := Find([]string{writeStudy(t)})
	if err != nil {
		t.Fatal(err)
	}
	rep := Build(found, Options{Network: fakeNetworks})
	rows := map[string]Row{}
	for _, r := range rep.Rows() {
		rows[r.Name] = r
	}
	return rep, rows
}

func TestTableRows(t *testing.T) {
	rep, rows := buildStudy(t)
	if len(rep.Runs) != len(studyFixtures()) {
		t.Fatalf("%d runs found, want %d", len(rep.Runs), len(studyFixtures()))
	}
	tests := []struct {
		name       string
		status     string
		selected   int
		valAcc     float64 // -1: null
		trainAcc   float64
		epochsDone int
		epochs     int
		best       bool
	}{
		{"a-tie", runs.StateFinished, 2, 0.70, 0.75, 4, 4, false},
		{"b-loss", runs.StateFinished, 2, 0.65, 0.70, 3, 3, false},
		{"c-best", runs.StateFinished, 1, 0.70, 0.60, 2, 2, true},
		{"d-failed", runs.StateFailed, 1, 0.45, 0.40, 1, 5, false},
		{"e-running", runs.StateRunning, 1, 0.50, 0.40, 2, 10, false},
		{"f-corrupt", StateCorrupt, 1, 0.99, 0.99, 1, 0, false},
		{"g-garbage", runs.StateUnknown, 2, 0.58, 0.60, 2, 3, false},
		{"h-empty", runs.StateRunning, 0, -1, -1, 0, 100, false},
		{"i-flags", runs.StateFinished, 1, 0.60, 0.50, 2, 2, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			row, ok := rows[tc.name]
			if !ok {
				t.Fatalf("no row for %s", tc.name)
			}
			if row.Status != tc.status || row.SelectedEpoch != tc.selected || row.Best != tc.best ||
				row.EpochsDone != tc.epochsDone || row.Epochs != tc.epochs {
				t.Errorf("row = status %q, selected %d, best %v, epochs %d/%d; want %q, %d, %v, %d/%d",
					row.Status, row.SelectedEpoch, row.Best, row.EpochsDone, row.Epochs, tc.status, tc.selected, tc.best, tc.epochsDone, tc.epochs)
			}
			checkFrac(t, "val_acc", row.ValAcc, tc.valAcc)
			checkFrac(t, "train_acc", row.TrainAcc, tc.trainAcc)
		})
	}
	// The failed run carries its error; the corrupt one has no config fields.
	if got := rows["d-failed"].Error; !strings.Contains(got, "non-finite loss") {
		t.Errorf("failed run's error = %q", got)
	}
	if r := rows["f-corrupt"]; r.Hyperparameters != nil || r.Network != "" || r.Params != nil {
		t.Errorf("corrupt run has config fields: %+v", r)
	}
	// Hyper-parameters and #params of a readable run; dropout only where the network has it.
	a := rows["a-tie"]
	if a.Network != "alexnet" || a.Hyperparameters == nil || a.Hyperparameters.BatchSize != 64 || a.Hyperparameters.LR != 1e-4 ||
		a.Hyperparameters.WeightDecay != 1e-4 || a.Hyperparameters.Dropout == nil || *a.Hyperparameters.Dropout != 0.4 ||
		a.Params == nil || *a.Params != 7000 {
		t.Errorf("a-tie row %+v (hyperparameters %+v)", a, a.Hyperparameters)
	}
	if b := rows["b-loss"]; b.Hyperparameters.Dropout != nil || b.Hyperparameters.Select != runs.SelectValLoss {
		t.Errorf("b-loss: dropout %v (vgg8 has none), select %q", b.Hyperparameters.Dropout, b.Hyperparameters.Select)
	}
}

func checkFrac(t *testing.T, what string, got *float64, want float64) {
	t.Helper()
	switch {
	case want < 0 && got != nil:
		t.Errorf("%s = %v, want null", what, *got)
	case want >= 0 && got == nil:
		t.Errorf("%s = null, want %v", what, want)
	case want >= 0 && math.Abs(*got-want) > 1e-12:
		t.Errorf("%s = %v, want %v", what, *got, want)
	}
}

func TestProblemsAreReported(t *testing.T) {
	_, rows := buildStudy(t)
	tests := []struct {
		run  string
		want []string // substrings of one of the problems
	}{
		{"f-corrupt", []string{"config.json"}},
		{"g-garbage", []string{"lines 2 and 4 unreadable"}},
		{"h-empty", []string{"no epoch recorded"}},
		{"i-flags", []string{"flags epoch 2 as best", "selects epoch 1"}},
	}
	for _, tc := range tests {
		all := strings.Join(rows[tc.run].Problems, "\n")
		for _, w := range tc.want {
			if !strings.Contains(all, w) {
				t.Errorf("%s: problems %q lack %q", tc.run, all, w)
			}
		}
	}
	for _, clean := range []string{"a-tie", "b-loss", "c-best"} {
		if p := rows[clean].Problems; len(p) != 0 {
			t.Errorf("%s: unexpected problems %q", clean, p)
		}
	}
}

func TestSelectEpoch(t *testing.T) {
	rows := func(vals ...[2]float64) []runs.EpochResult {
		var out []runs.EpochResult
		for i, v := range vals {
			out = append(out, runs.EpochResult{Epoch: i + 1, ValAcc: v[0], ValLoss: v[1]})
		}
		return out
	}
	tests := []struct {
		name string
		rows []runs.EpochResult
		rule string
		want int
	}{
		{"empty", nil, runs.SelectValAcc, -1},
		{"highest accuracy", rows([2]float64{0.5, 1}, [2]float64{0.7, 0.9}, [2]float64{0.6, 0.5}), runs.SelectValAcc, 1},
		{"accuracy tie takes the first", rows([2]float64{0.7, 1}, [2]float64{0.7, 0.5}), runs.SelectValAcc, 0},
		{"lowest loss", rows([2]float64{0.5, 1}, [2]float64{0.7, 0.9}, [2]float64{0.6, 0.5}), runs.SelectValLoss, 2},
		{"loss tie takes the first", rows([2]float64{0.5, 0.4}, [2]float64{0.7, 0.4}), runs.SelectValLoss, 0},
		{"NaN written as -1 is skipped", rows([2]float64{-1, -1}, [2]float64{0.2, 2}), runs.SelectValLoss, 1},
		{"unknown rule means accuracy", rows([2]float64{0.5, 0.1}, [2]float64{0.6, 0.9}), "", 1},
		{"nothing valid", rows([2]float64{-1, -1}), runs.SelectValAcc, -1},
		{"NaN is skipped", rows([2]float64{math.NaN(), math.NaN()}, [2]float64{0.2, 2}), runs.SelectValAcc, 1},
		{"infinite loss is skipped", rows([2]float64{0.1, math.Inf(1)}, [2]float64{0.2, 2}), runs.SelectValLoss, 1},
	}
	for _, tc := range tests {
		if got := SelectEpoch(tc.rows, tc.rule); got != tc.want {
			t.Errorf("%s: SelectEpoch = %d, want %d", tc.name, got, tc.want)
		}
	}
}

func TestBestRun(t *testing.T) {
	run := func(name string, acc, loss float64) *Run {
		return &Run{Name: name, Config: testConfig("vgg8", runs.SelectValAcc, 1), Selected: 0,
			Metrics: []runs.EpochResult{{Epoch: 1, ValAcc: acc, ValLoss: loss}}}
	}
	noConfig := run("noconfig", 0.99, 0.1)
	noConfig.Config = nil
	empty := &Run{Name: "empty", Selected: -1, Config: testConfig("vgg8", runs.SelectValAcc, 1)}
	tests := []struct {
		name string
		runs []*Run
		want string
	}{
		{"highest accuracy", []*Run{run("a", 0.6, 0.5), run("b", 0.7, 0.9)}, "b"},
		{"tie: lower loss", []*Run{run("a", 0.7, 0.9), run("b", 0.7, 0.5)}, "b"},
		{"full tie: first", []*Run{run("a", 0.7, 0.5), run("b", 0.7, 0.5)}, "a"},
		{"invalid loss loses a tie", []*Run{run("a", 0.7, -1), run("b", 0.7, 3)}, "b"},
		{"no config is no candidate", []*Run{noConfig, run("b", 0.5, 1)}, "b"},
		{"none", []*Run{empty}, ""},
	}
	for _, tc := range tests {
		got := ""
		if b := bestRun(tc.runs); b != nil {
			got = b.Name
		}
		if got != tc.want {
			t.Errorf("%s: best = %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestJSONIsTheTable(t *testing.T) {
	rep, _ := buildStudy(t)
	data, err := rep.JSON()
	if err != nil {
		t.Fatal(err)
	}
	var rows []map[string]any
	if err := json.Unmarshal(data, &rows); err != nil {
		t.Fatalf("not JSON: %v", err)
	}
	if len(rows) != len(rep.Runs) {
		t.Fatalf("%d objects, want %d", len(rows), len(rep.Runs))
	}
	best := 0
	for _, r := range rows {
		for _, k := range []string{"name", "dir", "status", "network", "hyperparameters", "epochs_done", "epochs",
			"selected_epoch", "train_acc", "val_acc", "val_macro_f1", "val_loss", "params", "best"} {
			if _, ok := r[k]; !ok {
				t.Errorf("%v lacks %q", r["name"], k)
			}
		}
		if r["best"] == true {
			best++
			if r["name"] != "c-best" {
				t.Errorf("best run in JSON is %v", r["name"])
			}
		}
		if r["name"] == "h-empty" && (r["val_acc"] != nil || r["selected_epoch"].(float64) != 0) {
			t.Errorf("empty run: val_acc %v, selected %v, want null and 0", r["val_acc"], r["selected_epoch"])
		}
	}
	if best != 1 {
		t.Errorf("%d runs marked best, want 1", best)
	}
}

func TestClassReport(t *testing.T) {
	// sklearn's classification_report of y_true/y_pred giving this matrix:
	// class a: precision 5/7, recall 5/6; class b: precision 2/3, recall 2/4.
	cr := NewClassReport([][]int64{{5, 1}, {2, 2}}, []string{"a", "b"})
	near := func(what string, got, want float64) {
		if math.Abs(got-want) > 1e-12 {
			t.Errorf("%s = %v, want %v", what, got, want)
		}
	}
	f1a := 2 * (5.0 / 7) * (5.0 / 6) / (5.0/7 + 5.0/6)
	f1b := 2 * (2.0 / 3) * 0.5 / (2.0/3 + 0.5)
	near("precision a", cr.Classes[0].Precision, 5.0/7)
	near("recall a", cr.Classes[0].Recall, 5.0/6)
	near("f1 b", cr.Classes[1].F1, f1b)
	near("accuracy", cr.Accuracy, 0.7)
	near("macro f1", cr.MacroAvg.F1, (f1a+f1b)/2)
	near("weighted recall", cr.WeightedAvg.Recall, (6*5.0/6+4*0.5)/10)
	if cr.Classes[1].Support != 4 || cr.Total != 10 || cr.Classes[0].Class != "a" {
		t.Errorf("report %+v", cr)
	}
}

func TestCellFormats(t *testing.T) {
	tests := []struct{ got, want string }{
		{sci(1e-4), "1e-4"}, {sci(5e-5), "5e-5"}, {sci(3e-4), "3e-4"}, {sci(2.5e-4), "2.5e-4"}, {sci(0), "0"},
		{sci(0.01), "0.01"}, {thousands(5972467), "5,972,467"}, {thousands(999), "999"}, {thousands(1000), "1,000"},
		{Row{SelectedEpoch: 45, Epochs: 100}.epochCell(), "45 / 100"}, {Row{Epochs: 100}.epochCell(), "– / 100"},
		{Row{Status: "running", EpochsDone: 12, Epochs: 100}.statusCell(), "running (12/100)"},
	}
	for _, tc := range tests {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
}
