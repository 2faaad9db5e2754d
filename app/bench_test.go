package app

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kfash-tf/kfash-tf/app/benchmark"
	"github.com/kfash-tf/kfash-tf/augment/augmenttest"
	"github.com/kfash-tf/kfash-tf/models"
)

// Benchmarks are not tests: nothing here asserts a speed, only that the
// figures are produced and consistent.

func TestParseMeasures(t *testing.T) {
	m, err := parseMeasures("train, latency")
	if err != nil || !m["train"] || !m["latency"] || m["infer"] {
		t.Errorf("parseMeasures = %v, %v", m, err)
	}
	for _, bad := range []string{"", "speed", "train,speed"} {
		if _, err := parseMeasures(bad); err == nil {
			t.Errorf("parseMeasures(%q): no error", bad)
		}
	}
}

// One tiny run of every measure through the command line: the report names
// the network, its parameters, and positive figures.
func TestBenchCommandJSON(t *testing.T) {
	text, err := runApp(t, "bench", "vgg8", "--batch", "2", "--infer-batch", "3", "--warmup", "1", "--steps", "2",
		"--min-seconds", "0", "--format", "json", "--step-times")
	if err != nil {
		t.Fatal(err)
	}
	var rep benchmark.Report
	if err := json.Unmarshal([]byte(text), &rep); err != nil {
		t.Fatalf("%v in\n%s", err, text)
	}
	spec, _ := models.Get("vgg8")
	sum, err := models.Summarize(spec, spec.Config(3))
	if err != nil {
		t.Fatal(err)
	}
	if rep.System != "kfash-tf" || rep.Network != "vgg8" || rep.TrainableParams != sum.TrainableParams || rep.ForwardFLOPs != sum.ForwardFLOPs {
		t.Errorf("report header %+v", rep)
	}
	if rep.Train == nil || rep.Infer == nil || rep.Latency == nil {
		t.Fatalf("missing measures: %+v", rep)
	}
	for name, tm := range map[string]benchmark.Timing{"train": rep.Train.Timing, "infer": *rep.Infer, "latency": *rep.Latency} {
		want := map[string]int{"train": 2, "infer": 3, "latency": 1}[name]
		if tm.Batch != want || tm.Steps != 2 || len(tm.StepMS) != 2 || !(tm.ImagesPerSecond > 0) || tm.WarmupSteps != 1 {
			t.Errorf("%s: %+v", name, tm)
		}
	}
	if rep.Train.Optimizer != "adamw" || math.IsNaN(rep.Train.Loss) {
		t.Errorf("train %+v", rep.Train)
	}
	if rep.PeakRSSBytes > 0 && rep.Train.PeakRSSBytes > rep.PeakRSSBytes {
		t.Errorf("peak RSS after training %d above the final peak %d", rep.Train.PeakRSSBytes, rep.PeakRSSBytes)
	}
}

// --graph-out writes the training graph and the tensor names a profiler
// feeds and fetches; a path that cannot be written is named with the flag.
func TestBenchGraphOut(t *testing.T) {
	path := filepath.Join(t.TempDir(), "train.pb")
	if _, err := runApp(t, "bench", "vgg8", "--measure", "train", "--batch", "1", "--warmup", "0", "--steps", "1",
		"--min-seconds", "0", "--graph-out", path); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Size() == 0 {
		t.Fatalf("graph: %v, %v", fi, err)
	}
	raw, err := os.ReadFile(path + ".json")
	if err != nil {
		t.Fatal(err)
	}
	var names map[string]interface{}
	if err := json.Unmarshal(raw, &names); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"images", "labels", "lr", "rng_step", "loss", "correct", "step", "init", "logits", "probs"} {
		if names[k] == nil {
			t.Errorf("%s.json lacks %q: %s", path, k, raw)
		}
	}
	bad := filepath.Join(t.TempDir(), "missing", "train.pb")
	_, err = runApp(t, "bench", "vgg8", "--measure", "train", "--steps", "1", "--min-seconds", "0", "--graph-out", bad)
	if err == nil || !strings.HasPrefix(err.Error(), "--graph-out "+bad+": ") {
		t.Errorf("unwritable --graph-out: %v", err)
	}
}

func TestBenchCommandErrors(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"bench"}, "bench needs one network"},
		{[]string{"bench", "nosuchnet"}, "unknown network"},
		{[]string{"bench", "vgg8", "--measure", "speed"}, "unknown --measure"},
		{[]string{"bench", "vgg8", "--batch", "0"}, "must be at least 1"},
		{[]string{"bench", "vgg8", "--optimizer", "rmsprop"}, "unknown optimizer"},
		{[]string{"bench", "vgg8", "--format", "yaml"}, "unknown --format"},
	}
	for _, c := range cases {
		if _, err := runApp(t, c.args...); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: error %v, want %q", c.args, err, c.want)
		}
	}
}

func TestBenchMatMul(t *testing.T) {
	text, err := runApp(t, "bench", "matmul", "--size", "64", "--warmup", "0", "--steps", "3", "--min-seconds", "0", "--format", "json")
	if err != nil {
		t.Fatal(err)
	}
	var res benchmark.MatMulResult
	if err := json.Unmarshal([]byte(text), &res); err != nil {
		t.Fatal(err)
	}
	if res.Size != 64 || res.Runs != 3 || !(res.GFLOPS > 0) || !(res.Seconds > 0) {
		t.Errorf("%+v", res)
	}
}

func TestBenchPipeline(t *testing.T) {
	dir := t.TempDir()
	if err := augmenttest.Write(dir, augmenttest.Spec{Classes: []string{"a", "b"}, PerClass: map[string]int{"Train": 4, "Validation": 1}, Size: 40, Seed: 1}); err != nil {
		t.Fatal(err)
	}
	text, err := runApp(t, "bench", "pipeline", "--data", dir, "--size", "32,24", "--batch", "2", "--workers", "2",
		"--min-seconds", "0", "--format", "json")
	if err != nil {
		t.Fatal(err)
	}
	var res []benchmark.PipelineResult
	if err := json.Unmarshal([]byte(text), &res); err != nil {
		t.Fatal(err)
	}
	if len(res) != 2 || res[0].Size != 32 || res[1].Size != 24 {
		t.Fatalf("%+v", res)
	}
	for _, r := range res {
		// The first batch is the warm-up; the next one is timed.
		if r.Images != 2 || r.Workers != 2 || r.Augment != "online" || !(r.ImagesPerSecond > 0) {
			t.Errorf("%+v", r)
		}
	}
	if _, err := runApp(t, "bench", "pipeline", "--data", filepath.Join(dir, "missing")); err == nil {
		t.Error("no error for a missing dataset")
	}
	if _, err := runApp(t, "bench", "pipeline", "--data", dir, "--size", "0"); err == nil || !strings.Contains(err.Error(), "--size") {
		t.Errorf("bad --size: error %v", err)
	}
}
