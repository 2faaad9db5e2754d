package report

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/kfash-tf/kfash-tf/graphs/runs"
)

// runMarkers are the files whose presence makes a folder a run folder. Not
// only config.json: a folder whose config.json was lost still holds a run
// worth showing (as corrupt) rather than silently skipping.
var runMarkers = []string{"config.json", "metrics.jsonl", "status.json"}

// maxDepth is how far below an argument Find looks for run folders: a
// folder of runs (1) or a folder of sweeps of runs (2).
const maxDepth = 2

// Found is a run folder found by Find, with the name the report shows.
type Found struct {
	Dir  string // the folder, as given on the command line joined with what was found below it
	Name string // Dir relative to the argument, or the argument's base name for a run folder itself
}

// Find returns the run folders named by paths: each path is a run folder or
// a folder holding run folders one or two levels down (a runs/ folder, a
// sweep folder, a folder of sweeps). Folders are returned in path order,
// each path's runs in the order they were made (a sweep's plan order), then
// by name, without duplicates. A path that does not
// exist, is not a folder or holds no run is an error naming it.
func Find(paths []string) ([]Found, error) {
	var out []Found
	seen := map[string]bool{}
	for _, p := range paths {
		runs, err := findUnder(p)
		if err != nil {
			return nil, err
		}
		for _, f := range runs {
			abs, err := filepath.Abs(f.Dir)
			if err != nil {
				abs = f.Dir
			}
			if seen[abs] {
				continue
			}
			seen[abs] = true
			out = append(out, f)
		}
	}
	return uniqueNames(out), nil
}

// findUnder returns the run folders at or below root.
func findUnder(root string) ([]Found, error) {
	info, err := os.Stat(root)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", root, unwrapPathError(err))
	}
	if !info.IsDir() {
		return nil, fmt.Errorf("%s is not a folder: give a run folder or a folder of run folders", root)
	}
	if isRunDir(root) {
		return []Found{{Dir: filepath.Clean(root), Name: filepath.Base(filepath.Clean(root))}}, nil
	}
	var out []Found
	walkRuns(root, root, 1, &out)
	if len(out) == 0 {
		return nil, fmt.Errorf("%s holds no run folder (looked for config.json up to %d levels down)", root, maxDepth)
	}
	made := make(map[string]time.Time, len(out))
	for _, f := range out {
		made[f.Dir] = createdAt(f.Dir)
	}
	sort.SliceStable(out, func(i, j int) bool { return made[out[i].Dir].Before(made[out[j].Dir]) })
	return out, nil
}

// createdAt is when the run in dir was made (config.json's "created"); a
// run without a readable one sorts last.
func createdAt(dir string) time.Time {
	_, cfg, err := runs.Open(dir)
	if err != nil || cfg.Created.IsZero() {
		return time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	return cfg.Created
}

// walkRuns appends the run folders below dir, depth levels under root.
// Unreadable folders are skipped: they cannot be reported anyway.
func walkRuns(root, dir string, depth int, out *[]Found) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Name() < entries[j].Name() })
	for _, e := range entries {
		name := e.Name()
		// Hidden folders and a run's own checkpoints never hold runs.
		if !e.IsDir() || strings.HasPrefix(name, ".") || name == "checkpoints" {
			continue
		}
		sub := filepath.Join(dir, name)
		if isRunDir(sub) {
			rel, err := filepath.Rel(root, sub)
			if err != nil {
				rel = name
			}
			*out = append(*out, Found{Dir: sub, Name: filepath.ToSlash(rel)})
			continue
		}
		if depth < maxDepth {
			walkRuns(root, sub, depth+1, out)
		}
	}
}

// isRunDir reports whether dir holds one of the files of a run folder.
func isRunDir(dir string) bool {
	for _, m := range runMarkers {
		if info, err := os.Stat(filepath.Join(dir, m)); err == nil && !info.IsDir() {
			return true
		}
	}
	return false
}

// uniqueNames gives runs that share a name (two arguments each a folder
// called "run") their cleaned paths as names instead.
func uniqueNames(runs []Found) []Found {
	count := map[string]int{}
	for _, f := range runs {
		count[f.Name]++
	}
	for i, f := range runs {
		if count[f.Name] > 1 {
			runs[i].Name = filepath.ToSlash(f.Dir)
		}
	}
	return runs
}

// unwrapPathError drops the path from an *fs.PathError: the caller names it.
func unwrapPathError(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// readMetrics reads metrics.jsonl leniently: unreadable lines (a disk that
// filled up, a hand edit) are skipped and described in problems, a later
// row for an epoch already seen replaces it (the row a resumed run redid),
// and the rows come back sorted by epoch. A missing file is no rows.
func readMetrics(dir string) (rows []runs.EpochResult, problems []string) {
	path := filepath.Join(dir, "metrics.jsonl")
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, []string{fmt.Sprintf("metrics.jsonl: %v", unwrapPathError(err))}
	}
	defer f.Close()
	byEpoch := map[int]runs.EpochResult{}
	var bad []int
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 16*1024*1024) // confusion matrices make long lines
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" {
			continue
		}
		var e runs.EpochResult
		if err := json.Unmarshal([]byte(text), &e); err != nil || e.Epoch <= 0 {
			bad = append(bad, line)
			continue
		}
		if _, dup := byEpoch[e.Epoch]; dup {
			problems = append(problems, fmt.Sprintf("metrics.jsonl: epoch %d appears more than once; the last row is used", e.Epoch))
		}
		byEpoch[e.Epoch] = e
	}
	if err := sc.Err(); err != nil {
		problems = append(problems, fmt.Sprintf("metrics.jsonl: read stopped: %v", err))
	}
	if len(bad) > 0 {
		problems = append(problems, fmt.Sprintf("metrics.jsonl: %s unreadable and skipped", describeLines(bad)))
	}
	for _, e := range byEpoch {
		rows = append(rows, e)
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].Epoch < rows[j].Epoch })
	return rows, problems
}

// describeLines says which lines were bad: "line 3", "lines 3, 7 and 9",
// or the first few and a count.
func describeLines(lines []int) string {
	if len(lines) == 1 {
		return fmt.Sprintf("line %d", lines[0])
	}
	const show = 5
	var parts []string
	for i, l := range lines {
		if i == show {
			return fmt.Sprintf("lines %s … (%d lines)", strings.Join(parts, ", "), len(lines))
		}
		parts = append(parts, fmt.Sprint(l))
	}
	return "lines " + strings.Join(parts[:len(parts)-1], ", ") + " and " + parts[len(parts)-1]
}

// readBestPointer returns the epoch checkpoints/best.json points at, 0 when
// there is none or it is unreadable.
func readBestPointer(dir string) int {
	data, err := os.ReadFile(filepath.Join(dir, "checkpoints", "best.json"))
	if err != nil {
		return 0
	}
	var p struct {
		Epoch int `json:"epoch"`
	}
	if json.Unmarshal(data, &p) != nil {
		return 0
	}
	return p.Epoch
}

// Evaluation is the part of an evaluation-SPLIT.json (written by
// `kfash-tf evaluate`) that the report shows.
type Evaluation struct {
	File            string       `json:"-"`
	Checkpoint      string       `json:"checkpoint"`
	Epoch           int          `json:"epoch"`
	Split           string       `json:"split"`
	Classes         []string     `json:"classes"`
	Examples        int          `json:"examples"`
	Accuracy        float64      `json:"accuracy"`
	Loss            float64      `json:"loss"`
	MacroF1         float64      `json:"macro_f1"`
	PerClass        []ClassScore `json:"per_class"`
	ConfusionMatrix [][]int64    `json:"confusion_matrix"`
}

// readEvaluation reads RUN/evaluation-SPLIT.json; nil without error when
// the file does not exist.
func readEvaluation(dir, split string) (*Evaluation, error) {
	name := "evaluation-" + split + ".json"
	data, err := os.ReadFile(filepath.Join(dir, name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, unwrapPathError(err))
	}
	ev := &Evaluation{File: name}
	if err := json.Unmarshal(data, ev); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return ev, nil
}
