package graphs

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/kfash-tf/kfash-tf/internal/atomicfile"
	"github.com/kfash-tf/kfash-tf/internal/crashpoint"
)

// RunConfig is a run's config.json: every setting that shaped it, so that a
// resume, an evaluation or an export rebuilds exactly the same graph.
type RunConfig struct {
	Network        string          `json:"network"`
	InputSize      int             `json:"input_size"`
	Classes        []string        `json:"classes"`
	Data           string          `json:"data"`
	Recipe         string          `json:"recipe,omitempty"`
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
}

// Run is a run folder: config.json, metrics.csv, metrics.jsonl,
// status.json, checkpoints/ and .lock (see LockRun).
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

func (r Run) configPath() string { return filepath.Join(r.Dir, "config.json") }

// CreateRun makes a new run folder with its config. An existing run there
// is an error that points at --resume: nothing is overwritten.
func CreateRun(dir string, cfg RunConfig) (Run, error) { return Run{Dir: dir}.Create(cfg) }

// Create is CreateRun for r's folder, keeping r's test hook.
func (r Run) Create(cfg RunConfig) (Run, error) {
	dir := r.Dir
	if _, err := os.Stat(r.configPath()); err == nil {
		return r, fmt.Errorf("%s already holds a run: continue it with 'kfash-tf train --resume %s', or choose another --out", dir, dir)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return r, err
	}
	data, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return r, err
	}
	if err := atomicfile.WriteFile(r.configPath(), append(data, '\n')); err != nil {
		return r, err
	}
	r.crash.Hit("run-created")
	return r, nil
}

// OpenRun reads the run folder at dir.
func OpenRun(dir string) (Run, RunConfig, error) {
	r := Run{Dir: dir}
	var cfg RunConfig
	data, err := os.ReadFile(r.configPath())
	if errors.Is(err, fs.ErrNotExist) {
		return r, cfg, fmt.Errorf("%s is not a run folder (no config.json)", dir)
	}
	if err != nil {
		return r, cfg, err
	}
	if err := json.Unmarshal(data, &cfg); err != nil {
		return r, cfg, fmt.Errorf("%s: %w", r.configPath(), err)
	}
	return r, cfg, nil
}

var metricsHeader = []string{"epoch", "step", "lr", "train_loss", "train_acc", "val_loss", "val_acc", "val_macro_f1", "epoch_seconds", "images_per_sec", "skipped_files", "best"}

// AppendMetrics adds an epoch's row to metrics.csv and metrics.jsonl (each
// line written whole and synced, so a crash never leaves half a row).
func (r Run) AppendMetrics(e EpochResult) error {
	csvPath := filepath.Join(r.Dir, "metrics.csv")
	_, statErr := os.Stat(csvPath)
	var buf []string
	if errors.Is(statErr, fs.ErrNotExist) {
		buf = append(buf, csvLine(metricsHeader))
	}
	buf = append(buf, csvLine(metricsRow(e)))
	if err := atomicfile.Append(csvPath, []byte(join(buf))); err != nil {
		return err
	}
	r.crash.Hit("metrics-csv")
	js, err := json.Marshal(jsonSafe(e))
	if err != nil {
		return err
	}
	if err := atomicfile.Append(filepath.Join(r.Dir, "metrics.jsonl"), append(js, '\n')); err != nil {
		return err
	}
	r.crash.Hit("metrics-appended")
	return nil
}

// ReadMetrics returns the rows of metrics.jsonl.
func (r Run) ReadMetrics() ([]EpochResult, error) {
	f, err := os.Open(filepath.Join(r.Dir, "metrics.jsonl"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var rows []EpochResult
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		var e EpochResult
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			return rows, fmt.Errorf("%s line %d: %w", f.Name(), line, err)
		}
		rows = append(rows, e)
	}
	return rows, sc.Err()
}

// TruncateMetrics keeps the rows of epochs up to epoch: a resumed run
// continues from its checkpoint, and rows written after it are redone.
func (r Run) TruncateMetrics(epoch int) error {
	rows, err := r.ReadMetrics()
	if err != nil {
		return err
	}
	var lines, csvLines []string
	csvLines = append(csvLines, csvLine(metricsHeader))
	for _, e := range rows {
		if e.Epoch > epoch {
			continue
		}
		js, _ := json.Marshal(jsonSafe(e))
		lines = append(lines, string(js)+"\n")
		csvLines = append(csvLines, csvLine(metricsRow(e)))
	}
	if err := atomicfile.WriteFile(filepath.Join(r.Dir, "metrics.jsonl"), []byte(join(lines))); err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(r.Dir, "metrics.csv"), []byte(join(csvLines)))
}

// jsonSafe replaces NaN and infinities (which JSON cannot carry) by -1 in
// the float fields that can hold them.
func jsonSafe(e EpochResult) EpochResult {
	for _, p := range []*float64{&e.TrainLoss, &e.TrainAcc, &e.ValLoss, &e.ValAcc, &e.ValMacroF1, &e.ImagesPerSec} {
		if !finite(*p) {
			*p = -1
		}
	}
	return e
}

// metricsRow is an epoch's metrics.csv row, in metricsHeader's order.
func metricsRow(e EpochResult) []string {
	f := func(v float64) string { return strconv.FormatFloat(v, 'g', 8, 64) }
	return []string{strconv.Itoa(e.Epoch), strconv.FormatInt(e.Step, 10), f(e.LR), f(e.TrainLoss), f(e.TrainAcc), f(e.ValLoss), f(e.ValAcc),
		f(e.ValMacroF1), f(e.Seconds), f(e.ImagesPerSec), strconv.Itoa(e.Skipped), strconv.FormatBool(e.Best)}
}

func csvLine(fields []string) string {
	var b strings.Builder
	w := csv.NewWriter(&b)
	_ = w.Write(fields) // a strings.Builder never fails
	w.Flush()
	return b.String()
}

func join(lines []string) string { return strings.Join(lines, "") }
