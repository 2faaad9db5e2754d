package app

import (
	"fmt"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/kfash-tf/kfash-tf/app/cluster"
	"github.com/kfash-tf/kfash-tf/graphs/runs"
)

// 'kfash-tf cluster-local': the arguments become cluster.Options; package
// cluster starts and supervises the tasks.

func clusterLocalCommand() *cli.Command {
	return &cli.Command{
		Name:      "cluster-local",
		Usage:     "run synchronous data-parallel training as N processes on this machine",
		ArgsUsage: "N -- train NETWORK --data DIR ... | N -- train --resume RUN",
		Description: "Starts N copies of kfash-tf, each running the train command given after '--' with\n" +
			"'--cluster 127.0.0.1:P0,...,127.0.0.1:PN-1 --task I' added (N free loopback ports),\n" +
			"as 'Train on several machines' in the README does with one command per machine.\n" +
			"It is for one machine: several processes stand in for several machines, to try a\n" +
			"cluster setup or check that N tasks train the same model as one. They share this\n" +
			"machine's cores, so it shows correctness, not speed (a 2-core machine trains no\n" +
			"faster with 2 tasks than with 1).\n\n" +
			"Task 0, the chief, writes the run folder (--out) and its output comes here; every\n" +
			"other task writes its output to task-I.log in --logs (default: a new temporary folder;\n" +
			"the folder is printed at the start). --batch-size is per task: N tasks train with\n" +
			"N x --batch-size images per step. TF_CONFIG is not passed on to the tasks.\n\n" +
			"When a task fails (exits non-zero, or is killed), every other task gets SIGTERM, then\n" +
			"SIGKILL after --grace; the failed task's last lines are shown and the exit status is\n" +
			"that task's. A task still running --grace after the chief ended counts as failed.\n" +
			"Ctrl-C (or SIGTERM) is forwarded to every task: they stop together after the step in\n" +
			"progress and the chief saves the run, as a single 'train' does, taking the time that\n" +
			"needs; the exit status is the chief's (130). A second Ctrl-C kills every task at once.\n" +
			"Each task runs in a session of its own: a Ctrl-C reaches the tasks through this\n" +
			"command, once; if this command is killed, Linux sends every task SIGTERM.\n\n" +
			"Recovery: run it again with 'train --resume RUN'. All tasks restart and the chief\n" +
			"continues from its last checkpoint (at most the epoch in progress is lost); a\n" +
			"cluster cannot take one restarted task back.\n\n" +
			"Examples:\n" +
			"  kfash-tf cluster-local 2 -- train vgg8 --data photos/ --epochs 5 --out runs/dp2\n" +
			"  kfash-tf cluster-local 2 -- train --resume runs/dp2\n" +
			"  kfash-tf cluster-local 4 --logs runs/dp4-logs -- train vgg8 --data photos/ --batch-size 32 --lr-scale linear --out runs/dp4\n" +
			"  kfash-tf cluster-local 2 --gpu-per-task -- train vgg8 --data photos/ --out runs/gpu2   # one GPU each",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "logs", Usage: "folder for the non-chief tasks' output, task-I.log (default: a new temporary folder)"},
			&cli.BoolFlag{Name: "gpu-per-task", Usage: "give task I the GPU I ('--gpus I'): several GPUs of one machine, one task each (the GPU build: make build TF_VARIANT=gpu)"},
			&cli.DurationFlag{Name: "grace", Value: cluster.DefaultGrace, Usage: "when a task has failed: how long the others get to stop after SIGTERM before SIGKILL; and how long they may run on once the chief has ended"},
		},
		// Without '--', train's flags land here: say where they belong.
		OnUsageError: func(_ *cli.Context, err error, _ bool) error {
			return fmt.Errorf("%w (train's arguments go after '--': kfash-tf cluster-local N -- train ...)", err)
		},
		Action: runClusterLocal,
	}
}

func runClusterLocal(c *cli.Context) error {
	n, command, err := parseClusterLocalArgs(c.Args().Slice())
	if err != nil {
		return err
	}
	if c.Bool("gpu-per-task") && slices.ContainsFunc(command, func(a string) bool { return a == "--gpus" || strings.HasPrefix(a, "--gpus=") }) {
		return fmt.Errorf("--gpu-per-task gives task I '--gpus I': leave --gpus out of the train command")
	}
	if grace := c.Duration("grace"); grace <= 0 {
		return fmt.Errorf("--grace %v: must be more than 0", grace)
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("finding this program to start its tasks: %w", err)
	}
	// The tasks are in sessions of their own: a terminal's Ctrl-C comes
	// only here, and the supervisor forwards it.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)
	res, err := cluster.Run(cluster.Options{
		Exe: exe, Command: command, Tasks: n, LogDir: c.String("logs"), PerTask: perTaskArgs(c.Bool("gpu-per-task")),
		Stdout: c.App.Writer, Stderr: c.App.ErrWriter, Grace: c.Duration("grace"), Signals: sigs,
	})
	if err != nil {
		return err
	}
	code := res.ExitCode()
	if code == 0 {
		return nil
	}
	return cli.Exit(clusterOutcome(res, n, command), code)
}

// perTaskArgs returns the arguments that differ between tasks beyond
// --cluster and --task: with gpuPerTask, task i trains on GPU i.
func perTaskArgs(gpuPerTask bool) func(int) []string {
	if !gpuPerTask {
		return nil
	}
	return func(i int) []string { return []string{"--gpus", strconv.Itoa(i)} }
}

// parseClusterLocalArgs splits cluster-local's arguments, "N [--] train
// ...", into the number of tasks and the tasks' command line.
func parseClusterLocalArgs(args []string) (int, []string, error) {
	const usage = "kfash-tf cluster-local N -- train NETWORK --data DIR ..."
	if len(args) == 0 {
		return 0, nil, fmt.Errorf("cluster-local needs the number of tasks and a train command: %s", usage)
	}
	n, err := strconv.Atoi(args[0])
	if err != nil || n < 1 || n > cluster.MaxTasks {
		return 0, nil, fmt.Errorf("N %q: the number of tasks, a whole number from 1 to %d (%s)", args[0], cluster.MaxTasks, usage)
	}
	command := args[1:]
	if len(command) > 0 && command[0] == "--" {
		command = command[1:]
	}
	if len(command) == 0 || command[0] != "train" {
		got := "nothing"
		if len(command) > 0 {
			got = strconv.Quote(command[0])
		}
		return 0, nil, fmt.Errorf("after N comes the train command, got %s: %s", got, usage)
	}
	for _, tok := range command[1:] {
		if tok == "--" {
			break
		}
		name, _, _ := strings.Cut(strings.TrimLeft(tok, "-"), "=")
		if strings.HasPrefix(tok, "-") && (name == "cluster" || name == "task") {
			return 0, nil, fmt.Errorf("%s: cluster-local sets --cluster and --task for each task (one loopback port and index each); leave it out", tok)
		}
	}
	return n, command, nil
}

// clusterOutcome is the one line that ends a cluster that did not finish
// cleanly: what happened, and how to go on: restart every task with
// --resume when the chief has written the run folder, else run the same
// command again.
func clusterOutcome(res cluster.Result, n int, command []string) string {
	again := "kfash-tf cluster-local " + strconv.Itoa(n) + " -- train --resume "
	next := "fix the cause and run the same command again (no run folder was written)"
	dir := flagValue(command, "resume")
	if dir == "" {
		dir = flagValue(command, "out")
	}
	_, statErr := os.Stat(runs.Run{Dir: dir}.ConfigPath())
	saved := dir != "" && statErr == nil
	switch {
	case dir == "":
		next = "if the chief printed a run folder, restart every task from its last checkpoint: " + again + "RUN"
	case saved:
		next = "restart every task from the chief's last checkpoint: " + again + dir
	}
	switch {
	case res.Failed >= 0:
		t := res.Tasks[res.Failed]
		where := ""
		if t.Log != "" {
			where = " (its output: " + t.Log + ")"
		}
		return fmt.Sprintf("task %d of %d (%s) failed: %s%s; every task was stopped; %s",
			t.Index, n, t.Addr, res.Reason, where, next)
	case res.Interrupted && saved:
		return "interrupted; the chief saved the run: continue it with " + again + dir
	case res.Interrupted:
		return "interrupted; " + next
	default: // the chief failed without being the first to
		return "the chief ended with " + res.Tasks[0].Status() + "; " + next
	}
}

// flagValue returns the value of --name in a command line (--name V or
// --name=V), or "".
func flagValue(args []string, name string) string {
	for i, tok := range args {
		if tok == "--" {
			break
		}
		if !strings.HasPrefix(tok, "-") {
			continue
		}
		k, v, hasValue := strings.Cut(strings.TrimLeft(tok, "-"), "=")
		if k != name {
			continue
		}
		if hasValue {
			return v
		}
		if i+1 < len(args) {
			return args[i+1]
		}
	}
	return ""
}
