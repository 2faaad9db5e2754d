package runs

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/kfash-tf/kfash-tf/internal/atomicfile"
	"github.com/kfash-tf/kfash-tf/internal/crashpoint"
)

// This file is the checkpoint folder manager: plain files only (no
// TensorFlow), so that the variables are written by whatever SaveFunc the
// caller passes (graphs.Saver.SaveFunc in kfash-tf) and the folder,
// pointer and prune logic can be tested and reused without a session.

// ErrNoCheckpoint is wrapped by the error Resolve returns when the named
// checkpoint does not exist (a fresh run, or no best yet).
var ErrNoCheckpoint = errors.New("no checkpoint")

// CheckpointDir manages a run's checkpoint folder (runs/NAME/checkpoints).
//
// Each checkpoint is a folder epoch-NNNN/ holding variables.index,
// variables.data-00000-of-00001 (a Saver checkpoint; the same layout as a
// SavedModel's variables/) and state.json. Names such as "last" and "best"
// are pointer files NAME.json, replaced atomically once the folder they
// point at is complete on disk; folders no pointer references are removed.
// "last" is always the last pointer moved, so a kill between two pointer
// renames leaves "best" (never "last") ahead, and a resume redoes the
// epoch. A kill before any pointer exists leaves complete folders that
// Latest still finds. One process writes a folder at a time (the run lock).
type CheckpointDir struct {
	Dir   string
	crash *crashpoint.Points // test hook: see package crashpoint
}

// checkpointPointer is the content of NAME.json.
type checkpointPointer struct {
	Folder string    `json:"folder"`
	Epoch  int       `json:"epoch"` // informative: state.json is authoritative
	Step   int64     `json:"step"`
	Time   time.Time `json:"time"`
}

const (
	checkpointFolderPrefix = "epoch-"
	checkpointVariables    = "variables"  // the Saver prefix inside a folder
	checkpointStateFile    = "state.json" // CheckpointState inside a folder
	checkpointTempMarker   = ".json.tmp-" // in the names of pointer files being written
	checkpointLast         = "last"
	checkpointBest         = "best"
)

// checkpointNameRE is what a checkpoint name may look like: it becomes a
// file name, so no separators and no leading dot.
var checkpointNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]*$`)

// checkCheckpointName checks name against checkpointNameRE.
func checkCheckpointName(name string) error {
	if !checkpointNameRE.MatchString(name) {
		return fmt.Errorf("invalid checkpoint name %q: use letters, digits, '_' and '-'", name)
	}
	return nil
}

// SaveFunc writes a checkpoint's variables at prefix (prefix.index and
// prefix.data-*) and syncs them; a Saver's Save bound to a session is one.
type SaveFunc func(prefix string) error

// DataFiles returns the data files (PREFIX.data-NNNNN-of-NNNNN) of the
// Saver checkpoint at prefix: with PREFIX.index, the whole checkpoint.
func DataFiles(prefix string) ([]string, error) {
	return filepath.Glob(globQuote(prefix) + ".data-*-of-*")
}

// globQuote escapes the glob metacharacters of a literal path.
func globQuote(p string) string {
	var b strings.Builder
	for _, r := range p {
		if strings.ContainsRune(`*?[\`, r) {
			b.WriteRune('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// WriteWith saves the variables (through save) and st into a fresh folder
// epoch-NNNN/, fsyncs it, then points each of names ("last", "best") at it
// by atomically replacing NAME.json, "last" after every other name, and
// finally removes every folder no name points at any more (including
// half-written ones left by a crash). Before anything is removed, "best" is
// made to name the folder of st's best epoch when it names nothing (a crash
// of an older kfash-tf between the pointers), so the best epoch is never
// pruned while metrics still call it best.
func (d CheckpointDir) WriteWith(save SaveFunc, names []string, st CheckpointState) error {
	if d.Dir == "" {
		return errors.New("checkpoint folder not set")
	}
	if len(names) == 0 {
		return errors.New("writing a checkpoint needs at least one name (last, best)")
	}
	for i, n := range names {
		if err := checkCheckpointName(n); err != nil {
			return err
		}
		for _, m := range names[:i] {
			if m == n {
				return fmt.Errorf("checkpoint name %q given twice", n)
			}
		}
	}
	if st.Epoch < 0 {
		return fmt.Errorf("checkpoint epoch %d is negative", st.Epoch)
	}
	if err := os.MkdirAll(d.Dir, 0o755); err != nil {
		return err
	}

	// A folder still referenced (e.g. "best" at this very epoch, written
	// before a resume) is never written into: take the next free name.
	referenced := d.referenced()
	folder := fmt.Sprintf("%s%04d", checkpointFolderPrefix, st.Epoch)
	for k := 1; referenced[folder]; k++ {
		folder = fmt.Sprintf("%s%04d.%d", checkpointFolderPrefix, st.Epoch, k)
	}
	path := filepath.Join(d.Dir, folder)
	// Whatever is there is unreferenced: a half-written folder from a crash.
	if err := os.RemoveAll(path); err != nil {
		return err
	}
	if err := os.Mkdir(path, 0o755); err != nil {
		return err
	}
	d.crash.Hit("ckpt-mkdir")
	committed := false
	defer func() {
		if !committed {
			os.RemoveAll(path)
		}
	}()
	if err := save(filepath.Join(path, checkpointVariables)); err != nil {
		return err
	}
	d.crash.Hit("ckpt-variables")
	state, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("checkpoint state: %w", err)
	}
	if err := atomicfile.Create(filepath.Join(path, checkpointStateFile), append(state, '\n')); err != nil {
		return err
	}
	d.crash.Hit("ckpt-state")
	// The folder's entries, then the folder's own entry in Dir.
	if err := atomicfile.Sync(path); err != nil {
		return err
	}
	if err := atomicfile.Sync(d.Dir); err != nil {
		return err
	}
	d.crash.Hit("ckpt-synced")

	for _, n := range lastLast(names) {
		if err := d.pointAt(n, folder, st); err != nil {
			return fmt.Errorf("pointing checkpoint %q at %s: %w", n, folder, err)
		}
		committed = true
	}
	if st.Loop != nil {
		if err := d.ReconcileBest(st.Loop.BestEpoch); err != nil {
			return fmt.Errorf("checkpoint %s written, but keeping the best one failed (nothing removed): %w", folder, err)
		}
	}
	d.crash.Hit("ckpt-prune")
	if err := d.prune(); err != nil {
		return fmt.Errorf("checkpoint %s written, but removing old ones failed: %w", folder, err)
	}
	d.crash.Hit("ckpt-done")
	return nil
}

// lastLast returns names with "last" moved to the end: the resume point
// moves only once every other name already names the new folder.
func lastLast(names []string) []string {
	out := make([]string, 0, len(names))
	hasLast := false
	for _, n := range names {
		if n == checkpointLast {
			hasLast = true
			continue
		}
		out = append(out, n)
	}
	if hasLast {
		out = append(out, checkpointLast)
	}
	return out
}

// ReconcileBest makes "best" name the checkpoint taken at the end of epoch
// bestEpoch (the loop's best epoch) when it names another epoch or nothing
// and such a folder exists. A kill between the pointer renames can leave
// "best" ahead of the epoch a resume continues from, and an older kfash-tf
// could leave no "best" at all; without this, the next prune would remove
// the folder metrics still call best. Does nothing when bestEpoch is 0.
func (d CheckpointDir) ReconcileBest(bestEpoch int) error {
	if bestEpoch <= 0 {
		return nil
	}
	if _, st, err := d.Resolve(checkpointBest); err == nil && st.Epoch == bestEpoch && epochEnd(st) {
		return nil
	}
	folder, st, err := d.EpochEnd(bestEpoch)
	if err != nil {
		return nil // nothing left to keep
	}
	return d.pointAt(checkpointBest, folder, st)
}

// Repair is for the run's writer (holding the run lock) before it
// continues: "last" is pointed at the newest complete folder when last.json
// is missing, "best" is reconciled with bestEpoch, and folders no pointer
// names are removed. A kill between a checkpoint's pointers and its prune,
// or before its first pointer, then leaves nothing behind even when the
// resumed run writes no checkpoint (it had already done every epoch).
func (d CheckpointDir) Repair(bestEpoch int) error {
	if _, _, err := d.Resolve(checkpointLast); errors.Is(err, ErrNoCheckpoint) {
		if folder, _, st, lerr := d.Latest(); lerr == nil {
			if err := d.pointAt(checkpointLast, folder, st); err != nil {
				return err
			}
		}
	}
	if err := d.ReconcileBest(bestEpoch); err != nil {
		return err
	}
	return d.prune()
}

// pointAt points name at folder, whose state is st.
func (d CheckpointDir) pointAt(name, folder string, st CheckpointState) error {
	ptr, err := json.MarshalIndent(checkpointPointer{Folder: folder, Epoch: st.Epoch, Step: st.Step, Time: st.Time}, "", "  ")
	if err != nil {
		return err
	}
	return d.writePointer(name, append(ptr, '\n'))
}

// writePointer replaces NAME.json atomically (temp file, fsync, rename,
// fsync of the folder), with crash points before and after the rename.
func (d CheckpointDir) writePointer(name string, data []byte) error {
	err := atomicfile.WriteFileWith(filepath.Join(d.Dir, name+".json"), data, atomicfile.Options{
		TempPattern:  "." + name + checkpointTempMarker + "*",
		BeforeRename: func() { d.crash.Hit("ckpt-" + name + "-temp") },
	})
	if err != nil {
		return err
	}
	d.crash.Hit("ckpt-" + name + "-renamed")
	return nil
}

// readPointer reads NAME.json.
func (d CheckpointDir) readPointer(name string) (checkpointPointer, error) {
	var p checkpointPointer
	data, err := os.ReadFile(filepath.Join(d.Dir, name+".json"))
	if err != nil {
		return p, err
	}
	if err := json.Unmarshal(data, &p); err != nil {
		return p, fmt.Errorf("checkpoint pointer %s.json: %w", name, err)
	}
	// The folder must be a plain entry of Dir: a pointer never leads out.
	if !strings.HasPrefix(p.Folder, checkpointFolderPrefix) || filepath.Base(p.Folder) != p.Folder {
		return p, fmt.Errorf("checkpoint pointer %s.json: invalid folder %q", name, p.Folder)
	}
	return p, nil
}

// referenced returns the folders the valid pointers of Dir point at. An
// unreadable pointer references nothing: Resolve could not use it either.
func (d CheckpointDir) referenced() map[string]bool {
	refs := map[string]bool{}
	entries, err := os.ReadDir(d.Dir)
	if err != nil {
		return refs
	}
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok || e.IsDir() || checkCheckpointName(name) != nil {
			continue
		}
		if p, err := d.readPointer(name); err == nil {
			refs[p.Folder] = true
		}
	}
	return refs
}

// prune removes the checkpoint folders no pointer references and pointer
// temp files left by a crash. Nothing else in Dir is touched.
func (d CheckpointDir) prune() error {
	refs := d.referenced()
	entries, err := os.ReadDir(d.Dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil // nothing written yet
	}
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range entries {
		n := e.Name()
		stale := (e.IsDir() && strings.HasPrefix(n, checkpointFolderPrefix) && !refs[n]) ||
			(!e.IsDir() && strings.HasPrefix(n, ".") && strings.Contains(n, checkpointTempMarker))
		if stale {
			if err := os.RemoveAll(filepath.Join(d.Dir, n)); err != nil {
				errs = append(errs, err)
			}
			d.crash.Hit("ckpt-pruned-one")
		}
	}
	return errors.Join(errs...)
}

// Resolve returns the Saver prefix and the state of the checkpoint called
// name ("last", "best"). An absent one is an error wrapping ErrNoCheckpoint:
// "no checkpoint 'best' in DIR".
func (d CheckpointDir) Resolve(name string) (prefix string, st CheckpointState, err error) {
	if err := checkCheckpointName(name); err != nil {
		return "", st, err
	}
	p, err := d.readPointer(name)
	if errors.Is(err, fs.ErrNotExist) {
		return "", st, fmt.Errorf("%w '%s' in %s", ErrNoCheckpoint, name, d.Dir)
	}
	if err != nil {
		return "", st, err
	}
	prefix, st, err = d.readFolder(p.Folder)
	if err != nil {
		return "", st, fmt.Errorf("checkpoint '%s' in %s: %w", name, d.Dir, err)
	}
	return prefix, st, nil
}

// readFolder checks that folder holds a complete checkpoint (state.json,
// variables.index and a data file) and returns its prefix and state.
func (d CheckpointDir) readFolder(folder string) (prefix string, st CheckpointState, err error) {
	dir := filepath.Join(d.Dir, folder)
	data, err := os.ReadFile(filepath.Join(dir, checkpointStateFile))
	if err != nil {
		return "", st, err
	}
	if err := json.Unmarshal(data, &st); err != nil {
		return "", st, fmt.Errorf("%s/%s: %w", folder, checkpointStateFile, err)
	}
	prefix = filepath.Join(dir, checkpointVariables)
	if _, err := os.Stat(prefix + ".index"); err != nil {
		return "", st, err
	}
	files, err := DataFiles(prefix)
	if err != nil {
		return "", st, err
	}
	if len(files) == 0 {
		return "", st, fmt.Errorf("%s: no variables data file", folder)
	}
	return prefix, st, nil
}

// completeFolder is a checkpoint folder found on disk with its state.
type completeFolder struct {
	name, prefix string
	state        CheckpointState
}

// complete lists the complete checkpoint folders of Dir, newest first (by
// step, then epoch, then time written).
func (d CheckpointDir) complete() []completeFolder {
	entries, err := os.ReadDir(d.Dir)
	if err != nil {
		return nil
	}
	var out []completeFolder
	for _, e := range entries {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), checkpointFolderPrefix) {
			continue
		}
		if prefix, st, err := d.readFolder(e.Name()); err == nil {
			out = append(out, completeFolder{e.Name(), prefix, st})
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i].state, out[j].state
		if a.Step != b.Step {
			return a.Step > b.Step
		}
		if a.Epoch != b.Epoch {
			return a.Epoch > b.Epoch
		}
		return a.Time.After(b.Time)
	})
	return out
}

// Latest returns the newest complete checkpoint folder, pointer or not: a
// kill after a folder was synced but before "last" moved (or before it was
// ever written) leaves one. An empty Dir is an error wrapping
// ErrNoCheckpoint.
func (d CheckpointDir) Latest() (folder, prefix string, st CheckpointState, err error) {
	all := d.complete()
	if len(all) == 0 {
		return "", "", st, fmt.Errorf("%w: no complete checkpoint folder in %s", ErrNoCheckpoint, d.Dir)
	}
	return all[0].name, all[0].prefix, all[0].state, nil
}

// EpochEnd returns the complete folder saved at the end of epoch (not in
// the middle of the next one by an interruption), the newest if several.
func (d CheckpointDir) EpochEnd(epoch int) (folder string, st CheckpointState, err error) {
	for _, c := range d.complete() {
		if c.state.Epoch == epoch && epochEnd(c.state) {
			return c.name, c.state, nil
		}
	}
	return "", st, fmt.Errorf("%w: no complete checkpoint of epoch %d in %s", ErrNoCheckpoint, epoch, d.Dir)
}

// epochEnd reports whether st was saved at an epoch's end rather than
// inside the next epoch (an interrupted run's "last").
func epochEnd(st CheckpointState) bool { return st.Loop == nil || st.Loop.BatchesDone == 0 }
