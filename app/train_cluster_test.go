package app

import (
	"flag"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/kfash-tf/kfash-tf/app/settings"
	"github.com/kfash-tf/kfash-tf/graphs"
	"github.com/kfash-tf/kfash-tf/graphs/runs"
)

// trainContext parses args with train's flags.
func trainContext(t *testing.T, args ...string) *cli.Context {
	t.Helper()
	set := flag.NewFlagSet("train", flag.ContinueOnError)
	for _, f := range settings.Flags() {
		if err := f.Apply(set); err != nil {
			t.Fatal(err)
		}
	}
	if err := set.Parse(args); err != nil {
		t.Fatal(err)
	}
	return cli.NewContext(cli.NewApp(), set, nil)
}

// --cluster and --task, else TF_CONFIG, item by item; one task is no
// cluster; every mistake is named.
func TestClusterFromFlags(t *testing.T) {
	const env2 = `{"cluster": {"worker": ["w0:2222", "w1:2222"]}, "task": {"type": "worker", "index": 1}}`
	ok := []struct {
		args []string
		env  string
		want *graphs.Cluster
	}{
		{nil, "", nil},
		{[]string{"--cluster", "a:1,b:2", "--task", "1"}, "", &graphs.Cluster{Workers: []string{"a:1", "b:2"}, Task: 1}},
		{nil, env2, &graphs.Cluster{Workers: []string{"w0:2222", "w1:2222"}, Task: 1}},
		// Flags win, each on its own.
		{[]string{"--task", "0"}, env2, &graphs.Cluster{Workers: []string{"w0:2222", "w1:2222"}, Task: 0}},
		{[]string{"--cluster", "a:1,b:2,c:3"}, env2, &graphs.Cluster{Workers: []string{"a:1", "b:2", "c:3"}, Task: 1}},
		{[]string{"--cluster", "a:1", "--task", "0"}, "", nil}, // one task: one process
		{nil, `{"cluster": {"worker": ["w0:1"]}, "task": {"type": "worker", "index": 0}}`, nil},
	}
	for _, c := range ok {
		got, err := clusterFromFlags(trainContext(t, c.args...), c.env)
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("%v with TF_CONFIG %s: %+v, %v; want %+v", c.args, c.env, got, err, c.want)
		}
	}
	bad := []struct {
		args []string
		env  string
		want string
	}{
		{[]string{"--cluster", "a:1,b:2"}, "", "--cluster needs --task"},
		{[]string{"--task", "1"}, "", "--task 1 needs --cluster (or TF_CONFIG)"},
		{[]string{"--cluster", " , ", "--task", "0"}, "", "--cluster: no address"},
		{[]string{"--cluster", "a:1,b:2", "--task", "2"}, "", "--task 2: the cluster (--cluster) has 2 tasks, 0 … 1"},
		{[]string{"--cluster", "a:1,b", "--task", "0"}, "", `--cluster: task 1: "b" is not host:port`},
		{[]string{"--cluster", "a:1,a:1", "--task", "0"}, "", "--cluster: tasks 0 and 1 have the same address"},
		{nil, `{"cluster": {"worker": ["w0:1", "w1:1"]}}`, "TF_CONFIG has a cluster but no task: add --task N"},
		{nil, `{"cluster": {"chief": ["c:1"], "worker": ["w0:1"]}, "task": {"type": "chief", "index": 0}}`, `TF_CONFIG: job "chief" in cluster`},
		{nil, `{"cluster": {"worker": ["w0:1"], "ps": ["p:1"]}, "task": {"type": "worker", "index": 0}}`, `TF_CONFIG: job "ps" in cluster`},
		{nil, `{"cluster": {"worker": ["w0:1", "w1:1"]}, "task": {"type": "evaluator", "index": 0}}`, `TF_CONFIG: task type "evaluator"`},
		{nil, `{"cluster": `, "TF_CONFIG: not the JSON of a cluster"},
	}
	for _, c := range bad {
		if _, err := clusterFromFlags(trainContext(t, c.args...), c.env); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v with TF_CONFIG %s: %v, want %q", c.args, c.env, err, c.want)
		}
	}
}

func TestClusterSettings(t *testing.T) {
	timeout, scale, err := clusterSettings(trainContext(t))
	if err != nil || timeout != 5*time.Minute || scale != settings.LRScaleNone {
		t.Errorf("defaults: %v, %q, %v", timeout, scale, err)
	}
	if timeout, scale, err = clusterSettings(trainContext(t, "--collective-timeout", "90s", "--lr-scale", "linear")); err != nil || timeout != 90*time.Second || scale != "linear" {
		t.Errorf("90s linear: %v, %q, %v", timeout, scale, err)
	}
	for _, args := range [][]string{{"--collective-timeout", "0s"}, {"--collective-timeout", "5"}, {"--collective-timeout", "-1m"}, {"--lr-scale", "sqrt"}} {
		if _, _, err := clusterSettings(trainContext(t, args...)); err == nil || !strings.Contains(err.Error(), args[0]) {
			t.Errorf("%v: %v, want an error naming %s", args, err, args[0])
		}
	}
}

// A new cluster run records its tasks and global batch, and scales the rate
// only when asked; a resume keeps its recorded settings and needs as many
// tasks as it was trained by.
func TestJoinCluster(t *testing.T) {
	base := runs.Config{BatchSize: 16, Schedule: runs.Schedule{Base: 1e-3}}
	ts := trainSetup{cfg: base}
	if err := joinCluster(&ts, 4, settings.LRScaleLinear); err != nil || ts.cfg.Tasks != 4 || ts.cfg.GlobalBatchSize != 64 ||
		ts.cfg.Schedule.Base != 4e-3 || ts.cfg.LRScale != "linear" {
		t.Errorf("linear: %+v, %v", ts.cfg, err)
	}
	ts = trainSetup{cfg: base}
	if err := joinCluster(&ts, 2, settings.LRScaleNone); err != nil || ts.cfg.Schedule.Base != 1e-3 || ts.cfg.LRScale != "" || ts.cfg.GlobalBatchSize != 32 {
		t.Errorf("none: %+v, %v", ts.cfg, err)
	}
	ts = trainSetup{cfg: base}
	if err := joinCluster(&ts, 1, settings.LRScaleLinear); err != nil || !reflect.DeepEqual(ts.cfg, base) {
		t.Errorf("one process: %+v, %v; want the config unchanged", ts.cfg, err)
	}
	two := base
	two.Tasks, two.GlobalBatchSize, two.Schedule.Base = 2, 32, 2e-3
	ts = trainSetup{cfg: two, resumed: true, run: runs.Run{Dir: "runs/x"}}
	if err := joinCluster(&ts, 2, settings.LRScaleLinear); err != nil || !reflect.DeepEqual(ts.cfg, two) {
		t.Errorf("resume: %+v, %v; want the recorded config", ts.cfg, err)
	}
	for _, c := range []struct {
		cfg   runs.Config
		tasks int
		want  string
	}{
		{two, 3, "runs/x was trained by 2 task(s), this resume has 3: resume it with --cluster of 2 addresses"},
		{two, 1, "this resume has 1: resume it with --cluster of 2 addresses"},
		{base, 2, "runs/x was trained by 1 task(s), this resume has 2: resume it without --cluster"},
	} {
		ts = trainSetup{cfg: c.cfg, resumed: true, run: runs.Run{Dir: "runs/x"}}
		if err := joinCluster(&ts, c.tasks, settings.LRScaleNone); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%d tasks on %+v: %v, want %q", c.tasks, c.cfg, err, c.want)
		}
	}
}
