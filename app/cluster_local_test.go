package app

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/kfash-tf/kfash-tf/app/cluster"
)

func TestClusterLocalArgs(t *testing.T) {
	n, cmd, err := parseClusterLocalArgs([]string{"3", "--", "train", "vgg8", "--data", "d"})
	if err != nil || n != 3 || !reflect.DeepEqual(cmd, []string{"train", "vgg8", "--data", "d"}) {
		t.Errorf("got %d %q %v", n, cmd, err)
	}
	// The "--" may be left out here; on the command line it keeps train's
	// flags from being taken for cluster-local's.
	if n, cmd, err := parseClusterLocalArgs([]string{"1", "train", "--resume", "r"}); err != nil || n != 1 || len(cmd) != 3 {
		t.Errorf("without --: %d %q %v", n, cmd, err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "number of tasks"},
		{[]string{"0", "--", "train"}, "from 1 to 64"},
		{[]string{"65", "--", "train"}, "from 1 to 64"},
		{[]string{"2.5", "--", "train"}, "from 1 to 64"},
		{[]string{"2"}, "got nothing"},
		{[]string{"2", "--", "evaluate", "r"}, `got "evaluate"`},
		{[]string{"2", "--", "train", "vgg8", "--cluster", "a:1"}, "--cluster: cluster-local sets"},
		{[]string{"2", "--", "train", "vgg8", "-task=1"}, "-task=1: cluster-local sets"},
	} {
		if _, _, err := parseClusterLocalArgs(tc.args); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want one with %q", tc.args, err, tc.want)
		}
	}
}

func TestClusterLocalOutcomeSaysHowToGoOn(t *testing.T) {
	run := t.TempDir()
	if err := os.WriteFile(filepath.Join(run, "config.json"), []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	failed := cluster.Result{Failed: 1, Reason: "exit status 3", Tasks: []cluster.Task{
		{Index: 0, Addr: "127.0.0.1:1"}, {Index: 1, Addr: "127.0.0.1:2", Log: "/logs/task-1.log", Code: 3}}}
	for _, tc := range []struct {
		res     cluster.Result
		command []string
		want    []string
	}{
		{failed, []string{"train", "vgg8", "--out", run},
			[]string{"task 1 of 2 (127.0.0.1:2) failed: exit status 3", "/logs/task-1.log", "cluster-local 2 -- train --resume " + run}},
		{failed, []string{"train", "--resume=" + run}, []string{"-- train --resume " + run}},
		{failed, []string{"train", "vgg8", "--out", filepath.Join(run, "nothing")}, []string{"run the same command again"}},
		{failed, []string{"train", "vgg8"}, []string{"--resume RUN"}},
		{cluster.Result{Failed: -1, Interrupted: true, Tasks: failed.Tasks}, []string{"train", "vgg8", "--out", run},
			[]string{"interrupted; the chief saved the run: continue it with kfash-tf cluster-local 2 -- train --resume " + run}},
	} {
		got := clusterOutcome(tc.res, 2, tc.command)
		for _, w := range tc.want {
			if !strings.Contains(got, w) {
				t.Errorf("%q: %q lacks %q", tc.command, got, w)
			}
		}
	}
}
