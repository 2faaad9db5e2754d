package benchmark

import (
	"errors"
	"math"
	"testing"
	"time"
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
