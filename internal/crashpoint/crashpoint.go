// Package crashpoint is a test hook: it lets a test kill the kfash-tf
// binary at a named point of writing a run folder (after a checkpoint's
// variables are saved, after a pointer file is renamed, …), so that the
// recovery of every state a kill can leave is tested, not only the states a
// kill at a random moment happens to hit.
//
// The binary reads KFASH_TF_CRASHPOINT=NAME:N once, when `train` starts
// (see FromEnv), and hands the parsed value to the run folder it writes; no
// package-level state is involved. Unset, the hook is a nil *Points and
// every Hit is a no-op.
package crashpoint

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
)

// Env is the environment variable FromEnv reads: NAME:N kills the process
// the Nth time point NAME is reached (N defaults to 1).
const Env = "KFASH_TF_CRASHPOINT"

// Points is an armed crash point. A nil *Points never fires.
type Points struct {
	name string
	n    int64
	hits atomic.Int64
}

// Parse reads "NAME" or "NAME:N".
func Parse(spec string) (*Points, error) {
	name, count, hasCount := strings.Cut(spec, ":")
	p := &Points{name: name, n: 1}
	if hasCount {
		n, err := strconv.ParseInt(count, 10, 64)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%s=%q: want NAME:N with N ≥ 1", Env, spec)
		}
		p.n = n
	}
	if name == "" {
		return nil, fmt.Errorf("%s=%q: no point name", Env, spec)
	}
	return p, nil
}

// FromEnv parses $KFASH_TF_CRASHPOINT; nil when it is unset or empty.
func FromEnv() (*Points, error) {
	spec := os.Getenv(Env)
	if spec == "" {
		return nil, nil
	}
	return Parse(spec)
}

// Hit marks that point name was reached; on the armed point's Nth hit the
// process kills itself with SIGKILL (no deferred function, no flush: what a
// kill -9 or a power cut leaves).
func (p *Points) Hit(name string) {
	if p == nil || name != p.name {
		return
	}
	if p.hits.Add(1) == p.n {
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // the signal is asynchronous: never return to the caller
	}
}
