package runs_test

import (
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/kfash-tf/kfash-tf/graphs/runs"
)

// plainEpoch is EpochResult without its JSON methods: what encoding/json
// wrote for a row before non-finite numbers were spelt as strings.
type plainEpoch runs.EpochResult

// fullEpoch returns a row with every field set to a distinct non-zero
// value, found by reflection so that a field added to EpochResult is
// covered without changing this test.
func fullEpoch(t *testing.T) runs.EpochResult {
	t.Helper()
	var e runs.EpochResult
	v := reflect.ValueOf(&e).Elem()
	for i := 0; i < v.NumField(); i++ {
		f := v.Field(i)
		switch f.Kind() {
		case reflect.Int, reflect.Int64:
			f.SetInt(int64(i + 1))
		case reflect.Float64:
			f.SetFloat(float64(i) + 0.25)
		case reflect.Bool:
			f.SetBool(true)
		case reflect.Slice:
			f.Set(reflect.ValueOf([][]int64{{int64(i), 1}, {2, 3}}))
		default:
			t.Fatalf("field %s: kind %s not covered by this test", v.Type().Field(i).Name, f.Kind())
		}
	}
	return e
}

// A finite row is written byte for byte as before, and every field of
// EpochResult survives the round trip (a field missing from the JSON
// mirror would come back zero).
func TestEpochResultJSON(t *testing.T) {
	e := fullEpoch(t)
	got, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := json.Marshal(plainEpoch(e))
	if string(got) != string(want) {
		t.Errorf("finite row\n got %s\nwant %s", got, want)
	}
	var back runs.EpochResult
	if err := json.Unmarshal(got, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, e) {
		t.Errorf("round trip %+v, want %+v", back, e)
	}
	// Without a confusion matrix the key is left out, as before.
	e.ValConfusion = nil
	got, _ = json.Marshal(e)
	if strings.Contains(string(got), "val_confusion") {
		t.Errorf("row without a matrix: %s", got)
	}
}

// The one policy for non-finite numbers: "NaN"/"+Inf"/"-Inf" strings in
// metrics.jsonl, NaN/+Inf/-Inf in metrics.csv, read back as they were,
// also after a truncation; an older run's -1 still reads.
func TestMetricsNonFinite(t *testing.T) {
	run, err := runs.Create(filepath.Join(t.TempDir(), "run"), runs.Config{Network: "vgg8"})
	if err != nil {
		t.Fatal(err)
	}
	rows := []runs.EpochResult{
		{Epoch: 1, LR: 1e-3, TrainLoss: 0.5, ValAcc: 0.75, Best: true},
		{Epoch: 2, LR: 1e-3, TrainLoss: math.NaN(), ValLoss: math.Inf(1), ValAcc: math.NaN(), ImagesPerSec: math.Inf(-1)},
		{Epoch: 3, LR: 1e-3, TrainLoss: math.NaN()},
	}
	for _, e := range rows {
		if err := run.AppendMetrics(e); err != nil {
			t.Fatalf("epoch %d: %v", e.Epoch, err)
		}
	}
	jsonl := readFile(t, filepath.Join(run.Dir, "metrics.jsonl"))
	for _, w := range []string{`"train_loss":"NaN"`, `"val_loss":"+Inf"`, `"images_per_sec":"-Inf"`} {
		if !strings.Contains(jsonl, w) {
			t.Errorf("metrics.jsonl lacks %s:\n%s", w, jsonl)
		}
	}
	check := func(when string) {
		t.Helper()
		got, err := run.ReadMetrics()
		if err != nil || len(got) < 2 {
			t.Fatalf("%s: %d rows, %v", when, len(got), err)
		}
		e := got[1]
		if !math.IsNaN(e.TrainLoss) || !math.IsInf(e.ValLoss, 1) || !math.IsNaN(e.ValAcc) || !math.IsInf(e.ImagesPerSec, -1) || e.LR != 1e-3 {
			t.Errorf("%s: row read back %+v", when, e)
		}
		if csv := readFile(t, filepath.Join(run.Dir, "metrics.csv")); !strings.Contains(csv, "\n2,0,0.001,NaN,0,+Inf,NaN,0,0,-Inf,0,false\n") {
			t.Errorf("%s: metrics.csv\n%s", when, csv)
		}
	}
	check("appended")
	if err := run.TruncateMetrics(2); err != nil {
		t.Fatal(err)
	}
	check("truncated")

	// A row of an older kfash-tf, -1 in place of NaN, reads as -1.
	old := `{"epoch":3,"step":30,"lr":0.001,"train_loss":-1,"train_acc":-1,"val_loss":-1,"val_acc":-1,"val_macro_f1":-1,"epoch_seconds":2,"images_per_sec":-1,"skipped_files":0,"best":false}` + "\n"
	f, err := os.OpenFile(filepath.Join(run.Dir, "metrics.jsonl"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(old)
	f.Close()
	got, err := run.ReadMetrics()
	if err != nil || len(got) != 3 || got[2].ValAcc != -1 || got[2].Seconds != 2 {
		t.Errorf("old row: %+v, %v", got, err)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// A folder that holds a run is never overwritten; the error says so
// without naming a command's flags, and Open reads back what Create wrote.
func TestCreateExisting(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	cfg := runs.Config{Network: "vgg8", Classes: []string{"a", "b"}, Select: runs.SelectValAcc,
		Schedule: runs.Schedule{Kind: "constant", Base: 1e-4}, Optimizer: runs.OptimizerConfig{Name: runs.OptimizerAdam}}
	if _, err := runs.Create(dir, cfg); err != nil {
		t.Fatal(err)
	}
	_, err := runs.Create(dir, runs.Config{Network: "alexnet"})
	if !errors.Is(err, runs.ErrExists) || !strings.Contains(err.Error(), dir) || strings.Contains(err.Error(), "--") {
		t.Errorf("second Create: %v, want ErrExists naming %s and no flag", err, dir)
	}
	_, got, err := runs.Open(dir)
	if err != nil || !reflect.DeepEqual(got, cfg) {
		t.Errorf("Open = %+v, %v; want %+v", got, err, cfg)
	}
	if _, _, err := runs.Open(t.TempDir()); err == nil || !strings.Contains(err.Error(), "not a run folder") {
		t.Errorf("Open of an empty folder: %v", err)
	}
}

// Schedule errors name the config.json setting, never a flag.
func TestScheduleValidate(t *testing.T) {
	cases := []struct {
		s       runs.Schedule
		setting string
	}{
		{runs.Schedule{Kind: "constant", Base: 0}, "lr"},
		{runs.Schedule{Kind: "constant", Base: math.NaN()}, "lr"},
		{runs.Schedule{Kind: "cosine", Base: 1, WarmupEpochs: -1}, "warmup_epochs"},
		{runs.Schedule{Kind: "step", Base: 1, Gamma: 0.5}, "step_epochs"},
		{runs.Schedule{Kind: "step", Base: 1, StepEpochs: 3}, "gamma"},
		{runs.Schedule{Kind: "linear", Base: 1}, "kind"},
	}
	for _, c := range cases {
		var se *runs.SettingError
		err := c.s.Validate()
		if !errors.As(err, &se) || se.Setting != c.setting || strings.Contains(err.Error(), "--") {
			t.Errorf("%+v: %v, want a SettingError for %s", c.s, err, c.setting)
		}
	}
	for _, s := range []runs.Schedule{{Kind: "constant", Base: 1}, {Kind: "cosine", Base: 1}, {Kind: "step", Base: 1, StepEpochs: 1, Gamma: 0.1}} {
		if err := s.Validate(); err != nil {
			t.Errorf("%+v: %v", s, err)
		}
	}
}

// Invalid session settings are refused before any session exists.
func TestSessionConfigValidate(t *testing.T) {
	for _, c := range []runs.SessionConfig{{Device: "tpu"}, {IntraOpThreads: -1}, {InterOpThreads: -2}} {
		if err := c.Validate(); err == nil {
			t.Errorf("%+v: no error", c)
		}
	}
	for _, c := range []runs.SessionConfig{{}, {Device: runs.DeviceCPU, IntraOpThreads: 2}, {Device: runs.DeviceGPU}} {
		if err := c.Validate(); err != nil {
			t.Errorf("%+v: %v", c, err)
		}
	}
}
