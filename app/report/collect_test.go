package report

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/kfash-tf/kfash-tf/graphs/runs"
)

func TestFind(t *testing.T) {
	root := t.TempDir()
	cfg := testConfig("vgg8", runs.SelectValAcc, 1)
	for _, name := range []string{"runs/a", "runs/b", "sweep/x/c", "too/deep/down/d"} {
		fixture{name: name, cfg: cfg}.write(t, root)
	}
	// A folder with only a status.json is a (half-written) run too.
	fixture{name: "runs/half", status: &runs.Status{State: runs.StateRunning}}.write(t, root)
	// Hidden folders, checkpoints and a report's own folders are not runs.
	fixture{name: "runs/.trash/e", cfg: cfg}.write(t, root)
	if err := os.MkdirAll(filepath.Join(root, "runs", "a", "checkpoints", "epoch-0001"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(root, "empty"), 0o755); err != nil {
		t.Fatal(err)
	}
	names := func(found []Found) []string {
		var out []string
		for _, f := range found {
			out = append(out, f.Name)
		}
		return out
	}
	tests := []struct {
		name string
		args []string
		want []string
		err  string
	}{
		{"folder of runs", []string{"runs"}, []string{"a", "b", "half"}, ""},
		{"two levels down, not three", []string{"."}, []string{"runs/a", "runs/b", "runs/half"}, ""},
		{"folder of sweeps", []string{"sweep"}, []string{"x/c"}, ""},
		{"a run folder itself", []string{"runs/b"}, []string{"b"}, ""},
		{"sweep folder", []string{"sweep/x"}, []string{"c"}, ""},
		{"duplicates removed", []string{"runs/a", "runs"}, []string{"a", "b", "half"}, ""},
		{"argument order kept", []string{"runs/b", "sweep/x/c", "runs/a"}, []string{"b", "c", "a"}, ""},
		{"no run", []string{"empty"}, nil, "holds no run folder"},
		{"missing", []string{"nope"}, nil, "nope"},
		{"a file", []string{"runs/a/config.json"}, nil, "not a folder"},
	}
	t.Chdir(root)
	for _, tc := range tests {
		found, err := Find(tc.args)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: error %v, want one containing %q", tc.name, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if got := names(found); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: found %q, want %q", tc.name, got, tc.want)
		}
	}
	// Two arguments that are both folders called "run" get their paths as names.
	fixture{name: "one/run", cfg: cfg}.write(t, root)
	fixture{name: "two/run", cfg: cfg}.write(t, root)
	found, err := Find([]string{"one/run", "two/run"})
	if err != nil {
		t.Fatal(err)
	}
	if got := names(found); !reflect.DeepEqual(got, []string{"one/run", "two/run"}) {
		t.Errorf("clashing names: %q", got)
	}
}

func TestReadMetricsLenient(t *testing.T) {
	dir := t.TempDir()
	lines := []string{
		`{"epoch":1,"val_acc":0.5}`,
		`garbage`,
		`{"epoch":2,"val_acc":0.6}`,
		``,
		`{"epoch":2,"val_acc":0.65}`, // a resumed run's redone epoch: the later row wins
		`{"epoch":3,"val_acc":0.7`,   // a half-written last line
	}
	if err := os.WriteFile(filepath.Join(dir, "metrics.jsonl"), []byte(strings.Join(lines, "\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	rows, problems := readMetrics(dir)
	if len(rows) != 2 || rows[0].Epoch != 1 || rows[1].Epoch != 2 || rows[1].ValAcc != 0.65 {
		t.Errorf("rows %+v", rows)
	}
	all := strings.Join(problems, "\n")
	for _, want := range []string{"lines 2 and 6 unreadable", "epoch 2 appears more than once"} {
		if !strings.Contains(all, want) {
			t.Errorf("problems %q lack %q", all, want)
		}
	}
	if rows, problems := readMetrics(t.TempDir()); rows != nil || problems != nil {
		t.Errorf("missing file: %v %v", rows, problems)
	}
}

// A sweep's runs are listed in the order they were made (its plan order),
// not by name.
func TestFindOrdersRunsByCreation(t *testing.T) {
	root := t.TempDir()
	made := []struct {
		name string
		hour int
	}{{"zeta", 1}, {"alpha", 3}, {"mid", 2}}
	for _, m := range made {
		cfg := testConfig("vgg8", runs.SelectValAcc, 1)
		cfg.Created = time.Date(2026, 5, 1, m.hour, 0, 0, 0, time.UTC)
		fixture{name: "sweep/" + m.name, cfg: cfg}.write(t, root)
	}
	fixture{name: "sweep/broken", rawCfg: "{"}.write(t, root)
	found, err := Find([]string{filepath.Join(root, "sweep")})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range found {
		got = append(got, f.Name)
	}
	if want := []string{"zeta", "mid", "alpha", "broken"}; !reflect.DeepEqual(got, want) {
		t.Errorf("runs %v, want %v (by creation, unreadable last)", got, want)
	}
}
