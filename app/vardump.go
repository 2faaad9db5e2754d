package app

import (
	"bytes"
	"encoding/gob"
	"fmt"
	"os"
	"path/filepath"

	"github.com/kfash-tf/kfash-tf/graphs"
	"github.com/kfash-tf/kfash-tf/internal/atomicfile"
)

// dumpEnv names a test hook, like internal/crashpoint's: set to a folder,
// it makes every task of a finished `train` (task 0 for a run of one
// process) write its final variables there as task-N.gob, a gob-encoded
// map[string][]float32 from variable name to values. Only the chief saves
// checkpoints, so this is how a test compares the weights of every task of
// a cluster (and of a one-process run, without reading TensorFlow's
// checkpoint format). Unset, nothing is written.
const dumpEnv = "KFASH_TF_DUMP_VARIABLES"

// dumpVariables writes t's variables for the dumpEnv hook.
func dumpVariables(t *graphs.Trainer, task int) error {
	dir := os.Getenv(dumpEnv)
	if dir == "" {
		return nil
	}
	vals, err := t.VariableValues()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(vals); err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(dir, fmt.Sprintf("task-%d.gob", task)), buf.Bytes())
}
