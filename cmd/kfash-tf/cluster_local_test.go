package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// These run the built binary's supervisor without depending on distributed
// training: a train that fails at once (an unknown network) is a task
// failure like any other. The supervisor's behaviour in detail is tested
// in app/cluster with fake tasks.

func TestClusterLocalHelpTeaches(t *testing.T) {
	stdout, stderr, code := run(t, "cluster-local", "--help")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{"cluster-local 2 -- train vgg8", "--resume", "one machine", "not speed", "SIGKILL", "--logs", "--grace"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("help lacks %q", want)
		}
	}
}

func TestClusterLocalRefusesBadTaskCount(t *testing.T) {
	for _, n := range []string{"0", "65", "x"} {
		_, stderr, code := run(t, "cluster-local", n, "--", "train", "vgg8", "--data", "d")
		if code == 0 || !strings.Contains(stderr, "from 1 to 64") {
			t.Errorf("N %s: exit %d, %q", n, code, stderr)
		}
	}
}

func TestClusterLocalFailingTaskIsNamedWithItsLog(t *testing.T) {
	logs := filepath.Join(t.TempDir(), "logs")
	_, stderr, code := run(t, "cluster-local", "2", "--logs", logs, "--", "train", "nosuchnet", "--data", t.TempDir(), "--out", filepath.Join(t.TempDir(), "run"))
	if code == 0 {
		t.Fatalf("exit 0 with a failing train:\n%s", stderr)
	}
	m := regexp.MustCompile(`task ([01]) of 2 \(127\.0\.0\.1:\d+\) failed: exit status 1`).FindStringSubmatch(stderr)
	if m == nil {
		t.Fatalf("no failed task named:\n%s", stderr)
	}
	log, err := os.ReadFile(filepath.Join(logs, "task-1.log"))
	if err != nil || !strings.Contains(string(log), "kfash-tf: ") {
		t.Errorf("task 1's log (%v) lacks its error: %s", err, log)
	}
	if !strings.Contains(stderr, "run the same command again") {
		t.Errorf("no run folder was written, yet the advice is otherwise:\n%s", stderr)
	}
}

// bench allreduce runs itself as local tasks through the same supervisor,
// with real collectives over loopback.
func TestClusterLocalBenchAllReduceTwoTasks(t *testing.T) {
	stdout, stderr, code := run(t, "bench", "allreduce", "--tasks", "2", "--networks", "vgg8", "--runs", "2", "--format", "json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var res []struct {
		Network     string
		Tasks       int
		Floats      int64
		Collectives int
		Fused       bool
		MedianMS    float64   `json:"median_ms"`
		RunsMS      []float64 `json:"runs_ms"`
	}
	if err := json.Unmarshal([]byte(stdout), &res); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, stdout)
	}
	// vgg8's trainable parameters at 3 classes, one fused all-reduce.
	if len(res) != 1 || res[0].Network != "vgg8" || res[0].Tasks != 2 || res[0].Floats != 299667 ||
		res[0].Collectives != 1 || !res[0].Fused || len(res[0].RunsMS) != 2 || res[0].MedianMS <= 0 {
		t.Errorf("results %+v", res)
	}
	if _, stderr, code := run(t, "bench", "allreduce", "--tasks", "1"); code == 0 || !strings.Contains(stderr, "from 2 to 64") {
		t.Errorf("--tasks 1: exit %d, %q", code, stderr)
	}
}
