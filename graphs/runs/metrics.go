package runs

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

	"github.com/kfash-tf/kfash-tf/internal/atomicfile"
)

// metricsHeader is metrics.csv's first line: EpochResult's JSON keys
// without val_confusion, which no spreadsheet cell can hold.
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
	js, err := json.Marshal(e)
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
		js, err := json.Marshal(e)
		if err != nil {
			return err
		}
		lines = append(lines, string(js)+"\n")
		csvLines = append(csvLines, csvLine(metricsRow(e)))
	}
	if err := atomicfile.WriteFile(filepath.Join(r.Dir, "metrics.jsonl"), []byte(join(lines))); err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(r.Dir, "metrics.csv"), []byte(join(csvLines)))
}

// metricsRow is an epoch's metrics.csv row, in metricsHeader's order. A
// non-finite figure is spelt NaN, +Inf or -Inf (strconv's spelling): the
// policy of metrics.jsonl without its quotes, since CSV cells have no type
// to keep apart. A row rewritten from an older metrics.jsonl keeps its -1.
func metricsRow(e EpochResult) []string {
	f := func(v float64) string { return strconv.FormatFloat(v, 'g', 8, 64) }
	return []string{strconv.Itoa(e.Epoch), strconv.FormatInt(e.Step, 10), f(e.LR), f(e.TrainLoss), f(e.TrainAcc), f(e.ValLoss), f(e.ValAcc),
		f(e.ValMacroF1), f(e.Seconds), f(e.ImagesPerSec), strconv.Itoa(e.Skipped), strconv.FormatBool(e.Best)}
}

// csvLine is fields as one CSV line, newline included.
func csvLine(fields []string) string {
	var b strings.Builder
	w := csv.NewWriter(&b)
	_ = w.Write(fields) // a strings.Builder never fails
	w.Flush()
	return b.String()
}

// join concatenates lines, each already ending in a newline.
func join(lines []string) string { return strings.Join(lines, "") }
