package graphs

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
	"time"

	tf "github.com/galeone/tensorflow/tensorflow/go"
	pb "github.com/galeone/tensorflow/tensorflow/go/core/protobuf/for_core_protos_go_proto"
	"google.golang.org/protobuf/proto"

	"github.com/kfash-tf/kfash-tf/graphs/runs"
	"github.com/kfash-tf/kfash-tf/tfops"
)

// This file is the process side of synchronous data-parallel training: the
// cluster (every task's address and this task's index), TensorFlow's
// server, the sessions that run on it, and the words for a peer that fails.
// The collective ops are in collective.go.
//
// Every task is a "worker" in TensorFlow's terms, and task 0 is also the
// chief: it restores or initialises the weights and broadcasts them, and it
// alone writes the run folder. The servers speak plain gRPC: no TLS, no
// authentication, and they listen on every interface, so anyone who reaches
// a port can run graphs in that process; keep cluster ports on a private
// network.

// JobName is the TensorFlow job every task of a cluster belongs to.
const JobName = "worker"

// Cluster is the set of processes that train one run together, as one of
// them sees it.
type Cluster struct {
	// Workers holds every task's host:port, in task order: the same list
	// on every task, of addresses the other tasks can dial.
	Workers []string
	// Task is this process's index in Workers; task 0 is the chief.
	Task int
}

// Size is the number of tasks.
func (c Cluster) Size() int { return len(c.Workers) }

// IsChief reports whether this process is task 0.
func (c Cluster) IsChief() bool { return c.Task == 0 }

// Device is task's device prefix, "/job:worker/replica:0/task:N".
func (c Cluster) Device(task int) string {
	return fmt.Sprintf("/job:%s/replica:0/task:%d", JobName, task)
}

// Validate checks that there are tasks, that Task is one of them and that
// every address is a host:port given once.
func (c Cluster) Validate() error {
	if len(c.Workers) == 0 {
		return errors.New("a cluster needs at least one task address")
	}
	if c.Task < 0 || c.Task >= len(c.Workers) {
		return fmt.Errorf("task %d is not in a cluster of %d tasks (0 … %d)", c.Task, len(c.Workers), len(c.Workers)-1)
	}
	seen := map[string]int{}
	for i, w := range c.Workers {
		if err := checkAddress(w); err != nil {
			return fmt.Errorf("task %d: %w", i, err)
		}
		if j, dup := seen[w]; dup {
			return fmt.Errorf("tasks %d and %d have the same address %s", j, i, w)
		}
		seen[w] = i
	}
	return nil
}

// checkAddress accepts host:port with a non-empty host and a port in
// 1 … 65535.
func checkAddress(a string) error {
	host, port, err := net.SplitHostPort(a)
	if err != nil {
		return fmt.Errorf("%q is not host:port", a)
	}
	p, err := strconv.Atoi(port)
	if host == "" || err != nil || p < 1 || p > 65535 {
		return fmt.Errorf("%q is not host:port with a port in 1 … 65535", a)
	}
	return nil
}

// ParseWorkers reads a comma-separated list of host:port (spaces around
// items are ignored). It does not check the addresses: Cluster.Validate
// does.
func ParseWorkers(list string) []string {
	var out []string
	for _, p := range strings.Split(list, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// TFConfig is what the TF_CONFIG environment variable says: the variable
// MultiWorkerMirroredStrategy reads and Kubeflow's TFJob operator sets in
// every replica.
type TFConfig struct {
	Workers []string // cluster.worker; nil if TF_CONFIG has no cluster
	Task    int      // task.index
	HasTask bool     // whether TF_CONFIG has a task
}

// ParseTFConfig reads TF_CONFIG's JSON,
// {"cluster": {"worker": ["host:port", …]}, "task": {"type": "worker", "index": N}}.
// Jobs other than worker (chief, ps, evaluator) are an error: every task
// here is a worker, and worker 0 is the chief.
func ParseTFConfig(data string) (TFConfig, error) {
	var raw struct {
		Cluster map[string][]string `json:"cluster"`
		Task    *struct {
			Type  string `json:"type"`
			Index *int   `json:"index"`
		} `json:"task"`
	}
	var out TFConfig
	dec := json.NewDecoder(strings.NewReader(data))
	if err := dec.Decode(&raw); err != nil {
		return out, fmt.Errorf("not the JSON of a cluster: %v", err)
	}
	for job, tasks := range raw.Cluster {
		if job != JobName {
			return out, fmt.Errorf("job %q in cluster: only %q jobs are supported (synchronous all-reduce training; worker 0 is the chief)", job, JobName)
		}
		out.Workers = tasks
	}
	if raw.Task != nil {
		if raw.Task.Type != JobName {
			return out, fmt.Errorf("task type %q: only %q is supported", raw.Task.Type, JobName)
		}
		if raw.Task.Index == nil {
			return out, errors.New("task has no index")
		}
		out.Task, out.HasTask = *raw.Task.Index, true
	}
	return out, nil
}

// Replica is this process's part of a cluster: its started TensorFlow
// server, through which its sessions run and its collectives reach the
// other tasks.
type Replica struct {
	Cluster Cluster
	// Timeout bounds every collective op: a task that does not join one
	// within it (hung, or much slower) fails the collective on the others.
	Timeout time.Duration
	server  *tfops.Server
	// benchKeys counts the instance keys AllReduceBench has taken.
	benchKeys int64
}

// StartReplica starts this task's server. sc's thread counts are the
// server's defaults. The server cannot be stopped (see tfops.Server): the
// process ends with it, and runs at most one.
func StartReplica(c Cluster, timeout time.Duration, sc runs.SessionConfig) (*Replica, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if timeout <= 0 {
		return nil, fmt.Errorf("the collective timeout must be positive, got %v", timeout)
	}
	srv, err := tfops.StartServer(serverDef(c, sc))
	if err != nil {
		return nil, err
	}
	return &Replica{Cluster: c, Timeout: timeout, server: srv}, nil
}

// serverDef is the ServerDef of c's task. The collective group leader must
// be in the server's default session configuration: without it the
// collectives wait forever, and set only in a session's they time out.
func serverDef(c Cluster, sc runs.SessionConfig) *pb.ServerDef {
	tasks := make(map[int32]string, len(c.Workers))
	for i, w := range c.Workers {
		tasks[int32(i)] = w
	}
	return &pb.ServerDef{
		Cluster:   &pb.ClusterDef{Job: []*pb.JobDef{{Name: JobName, Tasks: tasks}}},
		JobName:   JobName,
		TaskIndex: int32(c.Task),
		Protocol:  "grpc",
		DefaultSessionConfig: &pb.ConfigProto{
			IntraOpParallelismThreads: int32(sc.IntraOpThreads),
			InterOpParallelismThreads: int32(sc.InterOpThreads),
			Experimental:              &pb.ConfigProto_Experimental{CollectiveGroupLeader: c.Device(0)},
		},
	}
}

// sessionOptions are SessionOptions(sc) for a session on r's server that
// places every op on this task: graphs carry no device annotations, and the
// device filter keeps them (gradients included) local, so that opening or
// closing a session does not involve the peers.
func (r *Replica) sessionOptions(sc runs.SessionConfig) (*tf.SessionOptions, error) {
	cfg, err := configProto(sc)
	if err != nil {
		return nil, err
	}
	cfg.DeviceFilters = []string{fmt.Sprintf("/job:%s/task:%d", JobName, r.Cluster.Task)}
	data, err := proto.Marshal(cfg)
	if err != nil {
		return nil, fmt.Errorf("session config: %w", err)
	}
	return &tf.SessionOptions{Target: r.server.Target(), Config: data}, nil
}

// ErrPeer is the sentinel of a PeerError: errors.Is(err, ErrPeer) reports
// a failed collective, after which this process can run no other (see
// PeerError).
var ErrPeer = errors.New("a cluster task failed")

// PeerError is the error of a collective op that failed because another
// task did not take part: it died or cannot be reached (UNAVAILABLE), or it
// did not join within Replica.Timeout (DEADLINE_EXCEEDED). TensorFlow then
// fails every later collective of this process, so the only way on is to
// end every task and restart them all; the chief resumes from its last
// checkpoint.
type PeerError struct {
	Task     int    // the task named by TensorFlow's message; −1 if it names none
	Addr     string // its address; "" if unknown
	TimedOut bool   // DEADLINE_EXCEEDED: no answer within Timeout
	Timeout  time.Duration
	Err      error // TensorFlow's error
}

// Error says which task failed how, then TensorFlow's first line.
func (e *PeerError) Error() string {
	who := "a task"
	if e.Task >= 0 {
		who = fmt.Sprintf("task %d (%s)", e.Task, e.Addr)
	}
	what := "is unreachable"
	if e.TimedOut {
		what = fmt.Sprintf("did not answer within %v", e.Timeout)
	}
	return fmt.Sprintf("%s: %s %s (%s)", ErrPeer, who, what, e.Summary())
}

// Summary is the line of TensorFlow's message that says what happened
// ("Collective ops is aborted by: failed to connect to all addresses"),
// without the lines that say where it was seen or gRPC's details.
func (e *PeerError) Summary() string {
	for _, line := range strings.Split(StripTFHint(e.Err).Error(), "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "From /job:") {
			return line
		}
	}
	return e.Err.Error()
}

// Unwrap returns ErrPeer and TensorFlow's error.
func (e *PeerError) Unwrap() []error { return []error{ErrPeer, e.Err} }

// taskInMessage finds "/job:worker/replica:0/task:N" or "task:N" in
// TensorFlow's messages.
var taskInMessage = regexp.MustCompile(`/job:` + JobName + `(?:/replica:\d+)?/task:(\d+)`)

// unreachableTask finds gRPC's "remote target /job:worker/replica:0/task:N"
// in TensorFlow's messages: the task a call failed to reach.
var unreachableTask = regexp.MustCompile(`remote target /job:` + JobName + `(?:/replica:\d+)?/task:(\d+)`)

// peerError turns the error of a session run with collectives into a
// *PeerError when its status is one a missing peer gives; other errors
// come back unchanged.
func (r *Replica) peerError(err error) error {
	if err == nil || r == nil {
		return err
	}
	code, ok := tfops.ErrorCode(err)
	if !ok {
		return err
	}
	switch code {
	case tfops.CodeUnavailable, tfops.CodeDeadlineExceeded, tfops.CodeAborted, tfops.CodeCancelled, tfops.CodeFailedPrecond:
	default:
		return err
	}
	msg := err.Error()
	if code == tfops.CodeFailedPrecond && !strings.Contains(msg, "ollective") {
		return err
	}
	pe := &PeerError{Task: -1, TimedOut: code == tfops.CodeDeadlineExceeded, Timeout: r.Timeout, Err: err}
	// The task TensorFlow could not reach, or the first task other than
	// this one that the message names (by its device, else its address),
	// or the only other one.
	if m := unreachableTask.FindStringSubmatch(msg); m != nil {
		if t, err := strconv.Atoi(m[1]); err == nil && t != r.Cluster.Task && t < r.Cluster.Size() {
			pe.Task = t
		}
	}
	for _, m := range taskInMessage.FindAllStringSubmatch(msg, -1) {
		if pe.Task >= 0 {
			break
		}
		if t, err := strconv.Atoi(m[1]); err == nil && t != r.Cluster.Task && t < r.Cluster.Size() {
			pe.Task = t
			break
		}
	}
	if pe.Task < 0 {
		for t, w := range r.Cluster.Workers {
			if t != r.Cluster.Task && strings.Contains(msg, w) {
				pe.Task = t
				break
			}
		}
	}
	if pe.Task < 0 && r.Cluster.Size() == 2 {
		pe.Task = 1 - r.Cluster.Task
	}
	if pe.Task >= 0 {
		pe.Addr = r.Cluster.Workers[pe.Task]
	}
	return pe
}
