package runs

import (
	"errors"
	"fmt"
	"path/filepath"
)

// ResolvedCheckpoint is a run's checkpoint found by ResolveCheckpoint.
type ResolvedCheckpoint struct {
	Name   string // "last" or "best", as asked
	Prefix string // the Saver prefix of its variables
	State  CheckpointState
	// Recovered says how the checkpoint was found when its pointer file is
	// missing (a kill before the pointer was written, or a run of an older
	// kfash-tf); "" when the pointer named it. Callers show it.
	Recovered string
}

// ResolveCheckpoint finds the run's checkpoint called name without writing
// anything (readers may run beside the training). When NAME.json is
// missing it looks for what a kill can leave: "last" is the newest complete
// checkpoint folder, "best" the complete folder of the epoch metrics.jsonl
// marks best. Without either, the error wraps ErrNoCheckpoint.
func (r Run) ResolveCheckpoint(name string) (ResolvedCheckpoint, error) {
	d := r.Checkpoints()
	rc := ResolvedCheckpoint{Name: name}
	var err error
	rc.Prefix, rc.State, err = d.Resolve(name)
	if !errors.Is(err, ErrNoCheckpoint) {
		return rc, err
	}
	switch name {
	case checkpointLast:
		folder, prefix, st, lerr := d.Latest()
		if lerr != nil {
			return rc, err
		}
		rc.Prefix, rc.State = prefix, st
		rc.Recovered = fmt.Sprintf("%s.json is missing (the run was killed while saving): using the newest complete checkpoint, %s (epoch %d)", name, folder, st.Epoch)
		return rc, nil
	case checkpointBest:
		epoch, ok := r.bestEpochInMetrics()
		if !ok {
			return rc, err
		}
		folder, st, berr := d.EpochEnd(epoch)
		if berr != nil {
			return rc, err
		}
		rc.Prefix, rc.State = filepath.Join(d.Dir, folder, checkpointVariables), st
		rc.Recovered = fmt.Sprintf("%s.json is missing: using %s, the checkpoint of epoch %d, best in metrics.jsonl", name, folder, epoch)
		return rc, nil
	}
	return rc, err
}

// bestEpochInMetrics returns the last epoch metrics.jsonl marks best: the
// training loop marks each new best, so the last mark is the current one.
func (r Run) bestEpochInMetrics() (int, bool) {
	rows, _ := r.ReadMetrics() // rows read before a bad line still count
	best := 0
	for _, e := range rows {
		if e.Best {
			best = e.Epoch
		}
	}
	return best, best > 0
}

// RepairCheckpoints is CheckpointDir.Repair for the run's writer, taking
// the best epoch from metrics.jsonl when bestEpoch is 0 (a checkpoint of an
// older kfash-tf without the loop's state).
func (r Run) RepairCheckpoints(bestEpoch int) error {
	if bestEpoch == 0 {
		bestEpoch, _ = r.bestEpochInMetrics()
	}
	return r.Checkpoints().Repair(bestEpoch)
}
