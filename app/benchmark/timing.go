package benchmark

import (
	"bufio"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Timing is how long a run of identical steps took.
type Timing struct {
	Batch           int       `json:"batch"`
	WarmupSteps     int       `json:"warmup_steps"`
	Steps           int       `json:"steps"`
	Seconds         float64   `json:"seconds"`
	ImagesPerSecond float64   `json:"images_per_second"`
	MedianMS        float64   `json:"median_ms"` // median step time
	P90MS           float64   `json:"p90_ms"`
	StepMS          []float64 `json:"step_ms,omitempty"`
}

// stepTimes are the durations of timed steps.
type stepTimes []time.Duration

// timeSteps runs step warmup times untimed, then at least minSteps times
// and until minTime has passed, and returns the timed durations.
func timeSteps(warmup, minSteps int, minTime time.Duration, step func() error) (stepTimes, error) {
	for i := 0; i < warmup; i++ {
		if err := step(); err != nil {
			return nil, err
		}
	}
	var times stepTimes
	var total time.Duration
	for len(times) < minSteps || total < minTime {
		start := time.Now()
		if err := step(); err != nil {
			return nil, err
		}
		d := time.Since(start)
		times = append(times, d)
		total += d
	}
	return times, nil
}

// summary turns step durations of batch images each into rates and
// percentiles.
func (st stepTimes) summary(batch, warmup int, keep bool) Timing {
	var total time.Duration
	ms := make([]float64, len(st))
	for i, d := range st {
		total += d
		ms[i] = float64(d) / float64(time.Millisecond)
	}
	t := Timing{Batch: batch, WarmupSteps: warmup, Steps: len(st), Seconds: total.Seconds()}
	if total > 0 {
		t.ImagesPerSecond = float64(batch*len(st)) / total.Seconds()
	}
	sorted := append([]float64(nil), ms...)
	sort.Float64s(sorted)
	t.MedianMS, t.P90MS = percentile(sorted, 0.5), percentile(sorted, 0.9)
	if keep {
		t.StepMS = ms
	}
	return t
}

// percentile returns the q-quantile of sorted values (linear interpolation).
func percentile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	pos := q * float64(len(sorted)-1)
	i := int(pos)
	if i+1 >= len(sorted) {
		return sorted[len(sorted)-1]
	}
	return sorted[i] + (pos-float64(i))*(sorted[i+1]-sorted[i])
}

// peakRSS returns the process's peak resident set size (VmHWM) in bytes, or
// 0 where /proc is not available.
func peakRSS() int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 3 && fields[0] == "VmHWM:" && fields[2] == "kB" {
			kb, err := strconv.ParseInt(fields[1], 10, 64)
			if err != nil {
				return 0
			}
			return kb << 10
		}
	}
	return 0
}
