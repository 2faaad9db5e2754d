package sweep

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kfash-tf/kfash-tf/graphs/runs"
)

// fakeRun makes a run folder as train would leave it: config.json, an
// optional status.json, and optionally a "last" checkpoint pointer.
func fakeRun(t *testing.T, dir string, cfg runs.Config, state string, checkpoint bool) {
	t.Helper()
	run, err := runs.Create(dir, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if state != "" {
		if err := run.WriteStatus(runs.Status{State: state, Epochs: cfg.Epochs, EpochsDone: 1}); err != nil {
			t.Fatal(err)
		}
	}
	if checkpoint {
		ck := filepath.Join(dir, "checkpoints", "epoch-0001")
		os.MkdirAll(ck, 0o755)
		os.WriteFile(filepath.Join(ck, "state.json"), []byte(`{"epoch": 1, "step": 3}`), 0o644)
		os.WriteFile(filepath.Join(ck, "variables.index"), nil, 0o644)
		os.WriteFile(filepath.Join(ck, "variables.data-00000-of-00001"), nil, 0o644) // complete: index, data and state
		os.WriteFile(filepath.Join(dir, "checkpoints", "last.json"), []byte(`{"folder": "epoch-0001"}`), 0o644)
	}
}

// What the sweep does with a run follows from its folder.
func TestSweepInspectRun(t *testing.T) {
	data := t.TempDir()
	planned := expandText(t, "runs:\n  - network: vgg8\n    lr: 1e-3\n    epochs: 2\n", overrides{})
	r := planned[0]
	cfg := runs.Config{Network: "vgg8", Classes: []string{"a", "b"}, Data: data, Epochs: 2,
		Schedule: runs.Schedule{Base: 1e-3}}
	cases := []struct {
		name   string
		make   func(dir string)
		epochs int // --epochs override, 0: none
		want   string
		reason string
	}{
		{"no folder", func(string) {}, 0, actNew, ""},
		{"empty folder", func(d string) { os.MkdirAll(d, 0o755) }, 0, actNew, ""},
		{"finished", func(d string) { fakeRun(t, d, cfg, runs.StateFinished, true) }, 0, actSkip, ""},
		{"finished, fewer epochs asked", func(d string) { fakeRun(t, d, cfg, runs.StateFinished, true) }, 1, actSkip, ""},
		{"finished, more epochs asked", func(d string) { fakeRun(t, d, cfg, runs.StateFinished, true) }, 5, actExtend, ""},
		{"interrupted", func(d string) { fakeRun(t, d, cfg, runs.StateInterrupted, true) }, 0, actResume, ""},
		{"killed while running", func(d string) { fakeRun(t, d, cfg, runs.StateRunning, true) }, 0, actResume, ""},
		{"no status.json", func(d string) { fakeRun(t, d, cfg, "", true) }, 0, actResume, ""},
		{"failed with a checkpoint", func(d string) { fakeRun(t, d, cfg, runs.StateFailed, true) }, 0, actResume, ""},
		{"killed before its first checkpoint", func(d string) { fakeRun(t, d, cfg, runs.StateRunning, false) }, 0, actRestart, ""},
		{"junk without config.json", func(d string) {
			os.MkdirAll(d, 0o755)
			os.WriteFile(filepath.Join(d, "notes.txt"), []byte("mine"), 0o644)
		}, 0, actRefuse, "no config.json"},
		{"another run's settings", func(d string) {
			other := cfg
			other.Schedule.Base = 3e-4
			fakeRun(t, d, other, runs.StateFinished, true)
		}, 0, actRefuse, "lr"},
		{"another network", func(d string) {
			other := cfg
			other.Network = "vgg10"
			fakeRun(t, d, other, runs.StateFinished, true)
		}, 0, actRefuse, "vgg10"},
		{"other classes", func(d string) {
			other := cfg
			other.Classes = []string{"a", "c"}
			fakeRun(t, d, other, runs.StateFinished, true)
		}, 0, actRefuse, "classes"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out := t.TempDir()
			c.make(filepath.Join(out, r.Name))
			run := r
			if c.epochs > 0 {
				run = expandText(t, "runs:\n  - network: vgg8\n    lr: 1e-3\n", overrides{Epochs: c.epochs})[0]
			}
			s := setup{out: out, data: data, classes: []string{"a", "b"}, runs: []plannedRun{run}}
			st := inspectRun(s, run)
			if st.action != c.want || !strings.Contains(st.reason, c.reason) {
				t.Errorf("action %s (%s), want %s (%s)", st.action, st.reason, c.want, c.reason)
			}
		})
	}
}
