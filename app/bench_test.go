package app

import (
	"encoding/json"
	"errors"
	"math"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kfash-tf/kfash-tf/augment/augmenttest"
	"github.com/kfash-tf/kfash-tf/models"
)

// Benchmarks are not tests: nothing here asserts a speed, only that the
// figures are produced and consistent.

func TestTimeStepsHonoursWarmupStepsAndTime(t *testing.T) {
	cases := []struct {
		name              string
		warmup, minSteps  int
		minTime, stepTime time.Duration
		wantCalls         int // exact when minTime is 0
	}{
		{"steps_only", 2, 3, 0, 0, 5},
		{"no_warmup", 0, 1, 0, 0, 1},
		{"time_dominates", 1, 1, 30 * time.Millisecond, 5 * time.Millisecond, -1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			calls := 0
			times, err := timeSteps(c.warmup, c.minSteps, c.minTime, func() error {
				calls++
				time.Sleep(c.stepTime)
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if calls != c.warmup+len(times) {
				t.Errorf("%d calls, %d timed + %d warm-up", calls, len(times), c.warmup)
			}
			if c.wantCalls >= 0 && calls != c.wantCalls {
				t.Errorf("%d calls, want %d", calls, c.wantCalls)
			}
			var total time.Duration
			for _, d := range times {
				total += d
			}
			if len(times) < c.minSteps || total < c.minTime {
				t.Errorf("%d steps in %v, want at least %d and %v", len(times), total, c.minSteps, c.minTime)
			}
		})
	}
	boom := errors.New("boom")
	if _, err := timeSteps(1, 1, 0, func() error { return boom }); !errors.Is(err, boom) {
		t.Errorf("error %v, want boom", err)
	}
}

func TestStepTimesSummary(t *testing.T) {
	st := stepTimes{100 * time.Millisecond, 300 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond}
	s := st.summary(8, 2, true)
	if s.Steps != 4 || s.Batch != 8 || s.WarmupSteps != 2 {
		t.Errorf("summary %+v", s)
	}
	if math.Abs(s.Seconds-1) > 1e-9 || math.Abs(s.ImagesPerSecond-32) > 1e-9 {
		t.Errorf("%v s, %v images/s; want 1 s, 32 images/s", s.Seconds, s.ImagesPerSecond)
	}
	if s.MedianMS != 250 || math.Abs(s.P90MS-370) > 1e-9 {
		t.Errorf("median %v, p90 %v; want 250, 370", s.MedianMS, s.P90MS)
	}
	if len(s.StepMS) != 4 || s.StepMS[0] != 100 {
		t.Errorf("step list %v", s.StepMS)
	}
	if s := st.summary(8, 2, false); s.StepMS != nil {
		t.Errorf("step list kept without asking: %v", s.StepMS)
	}
}

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
	var rep BenchReport
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
	for name, tm := range map[string]BenchTiming{"train": rep.Train.BenchTiming, "infer": *rep.Infer, "latency": *rep.Latency} {
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
	var res BenchMatMul
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
	var res []BenchPipeline
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
