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
	"github.com/kfash-tf/kfash-tf/internal/crashpoint"
)

// Config is a run's config.json: every setting that shaped it, so that a
// resume, an evaluation or an export rebuilds exactly the same graph.
type Config struct {
	Network        string          `json:"network"`
	InputSize      int             `json:"input_size"`
	Classes        []string        `json:"classes"`
	Data           string          `json:"data"`
	Recipe         string          `json:"recipe,omitempty"`
	Init           string          `json:"init,omitempty"` // tfops.InitScheme's names; empty (older runs) was "torch"
	Normalize      string          `json:"normalize"`
	Mean           [3]float32      `json:"mean"`
	Std            [3]float32      `json:"std"`
	Augment        string          `json:"augment"`
	Epochs         int             `json:"epochs"`
	BatchSize      int             `json:"batch_size"`
	Optimizer      OptimizerConfig `json:"optimizer"`
	Schedule       Schedule        `json:"schedule"`
	LabelSmoothing float32         `json:"label_smoothing"`
	Dropout        float32         `json:"dropout"`
	ClassWeights   []float32       `json:"class_weights,omitempty"`
	Seed           int64           `json:"seed"`
	Select         string          `json:"select"`
	Patience       int             `json:"patience"`
	Workers        int             `json:"workers"`
	Session        SessionConfig   `json:"session"`
	Devices        []string        `json:"devices"`
	TensorFlow     string          `json:"tensorflow_version"`
	Program        string          `json:"kfash_tf_version"`
	Created        time.Time       `json:"created"`

	// A run trained by several processes (synchronous data parallelism):
	// Tasks processes at BatchSize each, GlobalBatchSize images per step;
	// LRScale "linear" when Schedule.Base is the given rate × Tasks. Absent
	// (zero) for a run of one process, whose config.json is unchanged.
	Tasks           int    `json:"tasks,omitempty"`
	GlobalBatchSize int    `json:"global_batch_size,omitempty"`
	LRScale         string `json:"lr_scale,omitempty"`
}

// Run is a run folder: config.json, metrics.csv, metrics.jsonl,
// status.json, checkpoints/ and .lock (see LockDir).
type Run struct {
	Dir   string
	crash *crashpoint.Points // test hook: see package crashpoint
}

// WithCrashPoints returns r with the test hook p armed in the writes of r
// and of its checkpoints (p nil: none).
func (r Run) WithCrashPoints(p *crashpoint.Points) Run {
	r.crash = p
	return r
}

// Checkpoints returns the run's checkpoint folder.
func (r Run) Checkpoints() CheckpointDir {
	return CheckpointDir{Dir: filepath.Join(r.Dir, "checkpoints"), crash: r.crash}
}

// ConfigPath returns the path of the run's config.json.
func (r Run) ConfigPath() string { return filepath.Join(r.Dir, "config.json") }

// ErrExists is wrapped by the error of Create when the folder already
// holds a run: nothing is overwritten, and the caller says how to continue
// that run instead.
var ErrExists = errors.New("the folder already holds a run")

// Create makes a new run folder at dir with its config. An existing run
// there is an error wrapping ErrExists.
func Create(dir string, cfg Config) (Run, error) { return Run{Dir: dir}.Create(cfg) }

// Create is the package's Create for r's folder, keeping r's test hook.
func (r Run) Create(cfg Config) (Run, error) {
	dir := r.Dir
	if _, err := os.Stat(r.ConfigPath()); err == nil {
		return r, fmt.Errorf("%s: %w", dir, ErrExists)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return r, err
	}
	data, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return r, err
	}
	if err := atomicfile.WriteFile(r.ConfigPath(), append(data, '\n')); err != nil {
		return r, err
	}
	r.crash.Hit("run-created")
	return r, nil
}

// Open reads the run folder at dir.
func Open(dir string) (Run, Config, error) {
	r := Run{Dir: dir}
	var cfg Config
	data, err := os.ReadFile(r.ConfigPath())
	if errors.Is(err, fs.ErrNotExist) {
		return r, cfg, fmt.Errorf("%s is not a run folder (no config.json)", dir)
	}
	if err != nil {
		return r, cfg, err
	}
	if err := json.Unmarshal(data, &cfg); err != nil {
		return r, cfg, fmt.Errorf("%s: %w", r.ConfigPath(), err)
	}
	return r, cfg, nil
}
