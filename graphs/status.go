package graphs

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// Run states written to a run's status.json. A run folder without one (made
// by an older kfash-tf, or killed before its first write) is "unknown".
const (
	StateRunning     = "running"     // training, or killed without a chance to say so
	StateFinished    = "finished"    // every epoch done, or stopped early by --patience
	StateInterrupted = "interrupted" // Ctrl-C / SIGTERM: saved, resumable with --resume
	StateFailed      = "failed"      // stopped by an error (Error says which)
	StateUnknown     = "unknown"
)

// RunStatus is a run's status.json: what became of the run, so that a sweep
// can skip finished runs and a report can show failed ones.
type RunStatus struct {
	State      string    `json:"state"`
	EpochsDone int       `json:"epochs_done"`
	Epochs     int       `json:"epochs"`
	BestEpoch  int       `json:"best_epoch,omitempty"`
	Error      string    `json:"error,omitempty"`
	Updated    time.Time `json:"updated"`
}

func (r Run) statusPath() string { return filepath.Join(r.Dir, "status.json") }

// WriteStatus replaces the run's status.json (atomically).
func (r Run) WriteStatus(s RunStatus) error {
	if s.Updated.IsZero() {
		s.Updated = time.Now().UTC()
	}
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	return WriteFileAtomic(r.statusPath(), append(data, '\n'))
}

// ReadStatus returns the run's status.json; a missing file gives state
// "unknown" and no error.
func (r Run) ReadStatus() (RunStatus, error) {
	data, err := os.ReadFile(r.statusPath())
	if errors.Is(err, fs.ErrNotExist) {
		return RunStatus{State: StateUnknown}, nil
	}
	if err != nil {
		return RunStatus{State: StateUnknown}, err
	}
	var s RunStatus
	if err := json.Unmarshal(data, &s); err != nil {
		return RunStatus{State: StateUnknown}, fmt.Errorf("%s: %w", r.statusPath(), err)
	}
	return s, nil
}
