package runs

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/kfash-tf/kfash-tf/internal/atomicfile"
)

// Run states written to a run's status.json. A run folder without one (made
// by an older kfash-tf, or killed before its first write) is "unknown".
const (
	StateRunning     = "running"     // training, or killed without a chance to say so
	StateFinished    = "finished"    // every epoch done, or stopped early (Config.Patience)
	StateInterrupted = "interrupted" // Ctrl-C / SIGTERM: saved, resumable
	StateFailed      = "failed"      // stopped by an error (Error says which)
	StateUnknown     = "unknown"     // no status.json
	// StateCrashed is never written: ReadStatus reports it for a "running"
	// status whose process is gone (killed, out of memory, power cut). Such
	// a run is resumable too.
	StateCrashed = "crashed"
)

// Status is a run's status.json: what became of the run, so that a sweep
// can skip finished runs and a report can show failed ones.
type Status struct {
	State      string    `json:"state"`
	EpochsDone int       `json:"epochs_done"`
	Epochs     int       `json:"epochs"`
	BestEpoch  int       `json:"best_epoch,omitempty"`
	Error      string    `json:"error,omitempty"`
	Updated    time.Time `json:"updated"`
	// PID and Host name the process that wrote the status, so that a
	// reader can tell a running run from a killed one. Absent in the
	// status of an older kfash-tf.
	PID  int    `json:"pid,omitempty"`
	Host string `json:"host,omitempty"`
}

// statusPath is the path of the run's status.json.
func (r Run) statusPath() string { return filepath.Join(r.Dir, "status.json") }

// WriteStatus replaces the run's status.json (atomically), recording the
// calling process as its writer unless s names one.
func (r Run) WriteStatus(s Status) error {
	if s.Updated.IsZero() {
		s.Updated = time.Now().UTC()
	}
	if s.PID == 0 {
		s.PID = os.Getpid()
		s.Host, _ = os.Hostname()
	}
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(r.statusPath(), append(data, '\n')); err != nil {
		return err
	}
	r.crash.Hit("status-written")
	return nil
}

// ReadStatus returns the run's status.json; a missing file gives state
// "unknown" and no error. A "running" status whose writer is gone comes
// back as StateCrashed: status.json cannot say so itself, since a killed
// process writes nothing.
func (r Run) ReadStatus() (Status, error) {
	data, err := os.ReadFile(r.statusPath())
	if errors.Is(err, fs.ErrNotExist) {
		return Status{State: StateUnknown}, nil
	}
	if err != nil {
		return Status{State: StateUnknown}, err
	}
	var s Status
	if err := json.Unmarshal(data, &s); err != nil {
		return Status{State: StateUnknown}, fmt.Errorf("%s: %w", r.statusPath(), err)
	}
	if s.State == StateRunning && r.writerGone(s) {
		s.State = StateCrashed
	}
	return s, nil
}

// writerGone reports whether the process that wrote the running status s
// has certainly stopped: the run lock is free (the kernel drops it when its
// holder dies), or, for a folder without a lock file, the recorded process
// of this host no longer exists. Another host's process cannot be checked:
// false.
func (r Run) writerGone(s Status) bool {
	if held, known := lockHeld(r.Dir); known {
		return !held
	}
	host, _ := os.Hostname()
	return s.Host != "" && s.Host == host && processGone(s.PID)
}
