package app

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/kfash-tf/kfash-tf/app/benchmark"
	"github.com/kfash-tf/kfash-tf/app/cluster"
	"github.com/kfash-tf/kfash-tf/graphs"
	"github.com/kfash-tf/kfash-tf/graphs/runs"
	"github.com/kfash-tf/kfash-tf/models"
)

// 'kfash-tf bench allreduce': without --cluster it runs itself as 2, 3, 4
// local tasks (package cluster, as cluster-local does) and tabulates what
// the chief measured; with --cluster and --task it is one of those tasks,
// or one machine's task of a real cluster.

func benchAllReduceCommand() *cli.Command {
	return &cli.Command{
		Name:  "allreduce",
		Usage: "time the per-step all-reduce of each network's gradients across 2, 3, 4 local tasks",
		Description: "Synchronous data-parallel training averages every gradient over the tasks each step.\n" +
			"This times that exchange alone, with each network's gradient tensors (the study's\n" +
			"3 classes), fused into flat tensors as training does (--per-tensor: one all-reduce\n" +
			"per tensor): one untimed run, then --runs timed ones; the median is shown.\n\n" +
			"Without --cluster, it starts itself as N processes on 127.0.0.1 for each N of --tasks,\n" +
			"as 'cluster-local' does. They share this machine's cores and talk over loopback, so\n" +
			"the figures are a floor for the exchange's cost, not a network measurement. With\n" +
			"--cluster and --task on every machine of a real cluster, the chief prints the\n" +
			"figures of that network.\n\n" +
			"Examples:\n" +
			"  kfash-tf bench allreduce\n" +
			"  kfash-tf bench allreduce --tasks 2 --networks vgg8,resnet34 --runs 20 --format json\n" +
			"  kfash-tf bench allreduce --cluster 10.0.0.1:2222,10.0.0.2:2222 --task 0   # and --task 1 on 10.0.0.2",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "tasks", Value: "2,3,4", Usage: "comma-separated numbers of local tasks, each from 2 to 64"},
			&cli.StringFlag{Name: "networks", Usage: "comma-separated networks (default: all)"},
			&cli.IntFlag{Name: "runs", Value: 10, Usage: "timed all-reduces per network (after one untimed)"},
			&cli.BoolFlag{Name: "per-tensor", Usage: "one all-reduce per gradient tensor instead of training's fused packs"},
			&cli.DurationFlag{Name: "timeout", Value: 2 * time.Minute, Usage: "how long a task waits for the others at an all-reduce"},
			&cli.StringFlag{Name: "cluster", Usage: "run as one task of this cluster (host:port,…; see 'train --cluster')"},
			&cli.IntFlag{Name: "task", Value: -1, Usage: "with --cluster: this task's index"},
			formatFlag("text", "json"),
		},
		Action: runBenchAllReduce,
	}
}

// allReducePlan is what every task of 'bench allreduce' runs.
type allReducePlan struct {
	specs     []models.Spec
	runs      int
	perTensor bool
	timeout   time.Duration
}

// args are the flags that give another process the same plan.
func (p allReducePlan) args() []string {
	names := make([]string, len(p.specs))
	for i, s := range p.specs {
		names[i] = s.Name
	}
	a := []string{"bench", "allreduce", "--networks", strings.Join(names, ","), "--runs", strconv.Itoa(p.runs),
		"--timeout", p.timeout.String(), "--format", "json"}
	if p.perTensor {
		a = append(a, "--per-tensor")
	}
	return a
}

func runBenchAllReduce(c *cli.Context) error {
	if c.Args().Len() > 0 {
		return fmt.Errorf("bench allreduce takes no arguments (got %q)", c.Args().First())
	}
	if err := checkFormat(c.String("format"), "text", "json"); err != nil {
		return err
	}
	p := allReducePlan{runs: c.Int("runs"), perTensor: c.Bool("per-tensor"), timeout: c.Duration("timeout")}
	if p.runs < 1 || p.runs > 10000 {
		return fmt.Errorf("--runs %d: from 1 to 10000", p.runs)
	}
	if p.timeout <= 0 {
		return fmt.Errorf("--timeout %v: must be more than 0", p.timeout)
	}
	names := splitList(c.String("networks"))
	if len(names) == 0 {
		names = models.Names()
	}
	for _, n := range names {
		spec, err := models.Get(n)
		if err != nil {
			return fmt.Errorf("--networks: %w", err)
		}
		p.specs = append(p.specs, spec)
	}
	if c.IsSet("cluster") || c.IsSet("task") {
		return benchAllReduceTask(c, p)
	}
	var counts []int
	for _, s := range splitList(c.String("tasks")) {
		n, err := strconv.Atoi(s)
		if err != nil || n < 2 || n > cluster.MaxTasks {
			return fmt.Errorf("--tasks %q: numbers of tasks from 2 to %d, comma-separated", c.String("tasks"), cluster.MaxTasks)
		}
		counts = append(counts, n)
	}
	if len(counts) == 0 {
		return fmt.Errorf("--tasks is empty: give numbers of tasks such as 2,3,4")
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("finding this program to start its tasks: %w", err)
	}
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)
	var all []benchmark.AllReduceResult
	for _, n := range counts {
		var chief bytes.Buffer
		res, err := cluster.Run(cluster.Options{
			Exe: exe, Command: p.args(), Tasks: n, Name: "bench allreduce",
			Stdout: &chief, Stderr: c.App.ErrWriter, Grace: 10 * time.Second, Signals: sigs,
		})
		if err != nil {
			return err
		}
		if code := res.ExitCode(); code != 0 {
			if res.Interrupted {
				return cli.Exit("", code)
			}
			return cli.Exit(fmt.Sprintf("bench allreduce with %d tasks failed (see above)", n), code)
		}
		// The tasks' logs are kept only to explain a failure.
		os.RemoveAll(res.LogDir)
		got, err := readAllReduceResults(&chief)
		if err != nil {
			return fmt.Errorf("the chief of %d tasks: %w", n, err)
		}
		all = append(all, got...)
	}
	if c.String("format") == "json" {
		return writeJSON(out(c), all)
	}
	return printAllReduce(out(c), all, counts)
}

// benchAllReduceTask is one task of the measurement: the chief prints each
// network's result as it comes (a JSON line with --format json).
func benchAllReduceTask(c *cli.Context, p allReducePlan) error {
	if !c.IsSet("cluster") || !c.IsSet("task") {
		return fmt.Errorf("--cluster and --task go together: every task's address, and this task's index")
	}
	cl := graphs.Cluster{Workers: graphs.ParseWorkers(c.String("cluster")), Task: c.Int("task")}
	if cl.Size() < 2 {
		return fmt.Errorf("--cluster %q: an all-reduce needs at least 2 tasks", c.String("cluster"))
	}
	r, err := graphs.StartReplica(cl, p.timeout, runs.SessionConfig{})
	if err != nil {
		return fmt.Errorf("--cluster, task %d: %w", cl.Task, err)
	}
	w := out(c)
	enc := json.NewEncoder(w)
	var done []benchmark.AllReduceResult
	err = benchmark.AllReduce(r, p.specs, !p.perTensor, p.runs, runs.SessionConfig{}, func(res benchmark.AllReduceResult) error {
		if !cl.IsChief() {
			return nil
		}
		if c.String("format") == "json" {
			return enc.Encode(res)
		}
		done = append(done, res)
		return nil
	})
	if err != nil {
		return err
	}
	if cl.IsChief() && c.String("format") == "text" {
		return printAllReduce(w, done, []int{cl.Size()})
	}
	return nil
}

// readAllReduceResults reads the chief's JSON lines.
func readAllReduceResults(r io.Reader) ([]benchmark.AllReduceResult, error) {
	var out []benchmark.AllReduceResult
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 || line[0] != '{' {
			continue // anything else the chief printed on stdout
		}
		var res benchmark.AllReduceResult
		if err := json.Unmarshal(line, &res); err != nil {
			return nil, fmt.Errorf("unreadable result %q: %v", line, err)
		}
		out = append(out, res)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no results")
	}
	return out, sc.Err()
}

// printAllReduce writes one row per network and one column per number of
// tasks: the median all-reduce time.
func printAllReduce(w io.Writer, all []benchmark.AllReduceResult, counts []int) error {
	if len(all) == 0 {
		return nil
	}
	how := "fused into packs as training does"
	if !all[0].Fused {
		how = "one all-reduce per tensor"
	}
	fmt.Fprintf(w, "mean all-reduce of the gradients of one step (%s), median of %d runs:\n", how, len(all[0].RunsMS))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprint(tw, "network\tfloats\tMB\ttensors\tall-reduces\t")
	for _, n := range counts {
		fmt.Fprintf(tw, "%d tasks\t", n)
	}
	fmt.Fprintln(tw)
	var order []string
	byNet := map[string]map[int]benchmark.AllReduceResult{}
	for _, r := range all {
		if byNet[r.Network] == nil {
			byNet[r.Network] = map[int]benchmark.AllReduceResult{}
			order = append(order, r.Network)
		}
		byNet[r.Network][r.Tasks] = r
	}
	for _, name := range order {
		var first benchmark.AllReduceResult
		for _, n := range counts {
			if r, ok := byNet[name][n]; ok {
				first = r
				break
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%.1f\t%d\t%d\t", name, commas(first.Floats), float64(first.Floats)*4/1e6, first.Tensors, first.Collectives)
		for _, n := range counts {
			if r, ok := byNet[name][n]; ok {
				fmt.Fprintf(tw, "%.1f ms\t", r.MedianMS)
			} else {
				fmt.Fprint(tw, "-\t")
			}
		}
		fmt.Fprintln(tw)
	}
	return tw.Flush()
}
