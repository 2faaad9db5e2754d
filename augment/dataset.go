package augment

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Layouts of a dataset folder, as reported by Dataset.Layout.
const (
	// LayoutSplits is a split root: DIR/Train/<class>/*, DIR/Validation/<class>/*
	// and optionally DIR/Test/<class>/* (split folder names match
	// case-insensitively).
	LayoutSplits = "splits"
	// LayoutFlat is a folder of class folders, DIR/<class>/*, exposed as the
	// single split SplitAll; it is what evaluation reads.
	LayoutFlat = "flat"
)

// Split names, as used in Dataset.Splits and accepted by Dataset.Split.
const (
	SplitTrain      = "train"
	SplitValidation = "validation"
	SplitTest       = "test"
	// SplitAll is the only split of a flat folder; on a split root it is
	// every split concatenated (train, validation, test).
	SplitAll = "all"
)

// splitOrder is the canonical order of the splits of a split root.
var splitOrder = [...]string{SplitTrain, SplitValidation, SplitTest}

// imageExtensions are the file extensions (lower case) that Open picks up;
// the decoders recognise the format by content, not by name.
var imageExtensions = [...]string{".jpg", ".jpeg", ".png", ".gif", ".webp", ".bmp"}

// Sample is one image of a dataset: its path and the index of its class in
// Dataset.Classes.
type Sample struct {
	Path  string
	Label int
}

// SkippedFile is a file that Open left out of the dataset, and why.
type SkippedFile struct {
	Path   string `json:"path"`
	Reason string `json:"reason"`
}

// OpenOptions configures Open. The zero value selects every class.
type OpenOptions struct {
	// Classes selects the classes to use and fixes their order (label i is
	// Classes[i]). Empty means every class folder found, sorted by name.
	// Naming a class that has no folder is an error.
	Classes []string
}

// Dataset is the list of images of a dataset folder, by split and class.
// Open builds it; it never changes afterwards, so it may be shared between
// goroutines.
type Dataset struct {
	// Root is the folder given to Open.
	Root string
	// Layout is LayoutSplits or LayoutFlat.
	Layout string
	// Classes are the class names; a Sample's Label indexes this slice.
	Classes []string
	// Splits maps a split name (SplitTrain, SplitValidation, SplitTest, or
	// SplitAll for a flat folder) to its samples, ordered by label then by
	// path so that every run sees the same list.
	Splits map[string][]Sample
	// Skipped lists the files of the selected class folders that have an
	// image extension but are not regular files (named pipes, devices,
	// sockets), in path order: they are left out of Splits because reading
	// one could block forever.
	Skipped []SkippedFile

	// splitDirs is the folder of each split as found on disk (for example
	// Root/Train), so that messages name the real path.
	splitDirs map[string]string
	// classDirs[split][label] is the class folder found on disk, or "" when
	// the split has no folder for that class: CheckTraining uses it to tell
	// an empty folder from a missing one.
	classDirs map[string][]string
}

// Open lists the images of dir. When dir has a Train, Validation or Test
// subfolder (any letter case) it is a split root (LayoutSplits); otherwise
// its subfolders are classes (LayoutFlat, one split named SplitAll).
//
// Classes are folder names; a class may be missing from some splits (see
// CheckTraining). Files are picked by extension (.jpg .jpeg .png .gif .webp
// .bmp, any case); hidden files and folders (names starting with ".") and
// subfolders of class folders are ignored. Symbolic links are followed.
// Files that are not regular files (named pipes, devices, sockets) are left
// out and listed in Dataset.Skipped.
// Open reads folder listings only: no image is decoded.
func Open(dir string, opts OpenOptions) (*Dataset, error) {
	info, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("augment: %s: cannot open dataset: %w", dir, unwrapPathError(err))
	}
	if !info.IsDir() {
		return nil, fmt.Errorf("augment: %s: dataset must be a folder", dir)
	}
	subdirs, err := listSubdirs(dir)
	if err != nil {
		return nil, err
	}

	ds := &Dataset{Root: dir, splitDirs: map[string]string{}}
	var others []string
	for _, name := range subdirs {
		split := strings.ToLower(name)
		if !isSplitName(split) {
			others = append(others, name)
			continue
		}
		if prev, dup := ds.splitDirs[split]; dup {
			return nil, fmt.Errorf("augment: %s: both %s and %s are present; keep one %s split folder",
				dir, filepath.Base(prev), name, split)
		}
		ds.splitDirs[split] = filepath.Join(dir, name)
	}

	// found[split][class] = sorted image paths; hasDir[split][class] = folder.
	found := map[string]map[string][]string{}
	folders := map[string]map[string]string{}
	skipped := map[string]map[string][]SkippedFile{}
	if len(ds.splitDirs) > 0 {
		ds.Layout = LayoutSplits
		if err := rejectStrayClasses(dir, others); err != nil {
			return nil, err
		}
		for split, sdir := range ds.splitDirs {
			found[split], folders[split], skipped[split], err = listClasses(sdir)
			if err != nil {
				return nil, err
			}
		}
	} else {
		ds.Layout = LayoutFlat
		ds.splitDirs[SplitAll] = dir
		found[SplitAll], folders[SplitAll], skipped[SplitAll], err = listClasses(dir)
		if err != nil {
			return nil, err
		}
	}

	ds.Classes, err = selectClasses(dir, folders, opts.Classes)
	if err != nil {
		return nil, err
	}
	ds.Splits = make(map[string][]Sample, len(found))
	ds.classDirs = make(map[string][]string, len(found))
	for split, byClass := range found {
		var samples []Sample
		dirs := make([]string, len(ds.Classes))
		for label, class := range ds.Classes {
			dirs[label] = folders[split][class]
			for _, p := range byClass[class] {
				samples = append(samples, Sample{Path: p, Label: label})
			}
			ds.Skipped = append(ds.Skipped, skipped[split][class]...)
		}
		ds.Splits[split] = samples
		ds.classDirs[split] = dirs
	}
	sort.Slice(ds.Skipped, func(i, j int) bool { return ds.Skipped[i].Path < ds.Skipped[j].Path })
	return ds, nil
}

// Split returns the samples of one split: "train", "validation", "test" or
// "all" (any letter case). On a split root "all" is every split
// concatenated in that order. The returned slice is the Dataset's own for a
// single split: do not modify it.
func (d *Dataset) Split(name string) ([]Sample, error) {
	split := strings.ToLower(strings.TrimSpace(name))
	if s, ok := d.Splits[split]; ok {
		return s, nil
	}
	if split == SplitAll && d.Layout == LayoutSplits {
		var all []Sample
		for _, s := range d.SplitNames() {
			all = append(all, d.Splits[s]...)
		}
		return all, nil
	}
	if split != SplitAll && !isSplitName(split) {
		return nil, fmt.Errorf("augment: unknown split %q (want train, validation, test or all)", name)
	}
	if d.Layout == LayoutFlat {
		return nil, fmt.Errorf("augment: %s: no %s split: a folder of class folders has only the split %q",
			d.Root, split, SplitAll)
	}
	return nil, fmt.Errorf("augment: %s: no %s split (found: %s)", d.Root, split, strings.Join(d.SplitNames(), ", "))
}

// SplitNames lists the splits present, in the order train, validation, test
// (or just "all" for a flat folder).
func (d *Dataset) SplitNames() []string {
	if _, ok := d.Splits[SplitAll]; ok {
		return []string{SplitAll}
	}
	var names []string
	for _, s := range splitOrder {
		if _, ok := d.Splits[s]; ok {
			names = append(names, s)
		}
	}
	return names
}

// Counts returns the number of images of each class (indexed by label) in a
// split, or nil when the split does not exist.
func (d *Dataset) Counts(split string) []int {
	samples, err := d.Split(split)
	if err != nil {
		return nil
	}
	counts := make([]int, len(d.Classes))
	for _, s := range samples {
		if s.Label >= 0 && s.Label < len(counts) {
			counts[s.Label]++
		}
	}
	return counts
}

func isSplitName(s string) bool {
	for _, name := range splitOrder {
		if s == name {
			return true
		}
	}
	return false
}

// selectClasses returns the sorted union of class folders, or the requested
// classes in the requested order after checking that each has a folder.
func selectClasses(root string, folders map[string]map[string]string, want []string) ([]string, error) {
	all := map[string]bool{}
	for _, byClass := range folders {
		for class := range byClass {
			all[class] = true
		}
	}
	available := make([]string, 0, len(all))
	for class := range all {
		available = append(available, class)
	}
	sort.Strings(available)
	if len(want) == 0 {
		if len(available) == 0 {
			return nil, fmt.Errorf("augment: %s: no class folders found", root)
		}
		return available, nil
	}

	seen := map[string]bool{}
	var missing []string
	for _, class := range want {
		if seen[class] {
			return nil, fmt.Errorf("augment: %s: class %q is listed twice", root, class)
		}
		seen[class] = true
		if !all[class] {
			missing = append(missing, fmt.Sprintf("%q", class))
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("augment: %s: no folder for class %s (found: %s)",
			root, strings.Join(missing, ", "), strings.Join(available, ", "))
	}
	return append([]string(nil), want...), nil
}

// listClasses maps each visible subfolder of dir (a class) to its sorted
// image paths, to its folder path and to its skipped special files.
func listClasses(dir string) (map[string][]string, map[string]string, map[string][]SkippedFile, error) {
	classes, err := listSubdirs(dir)
	if err != nil {
		return nil, nil, nil, err
	}
	files := make(map[string][]string, len(classes))
	folders := make(map[string]string, len(classes))
	skipped := map[string][]SkippedFile{}
	for _, class := range classes {
		cdir := filepath.Join(dir, class)
		paths, skips, err := listImages(cdir)
		if err != nil {
			return nil, nil, nil, err
		}
		files[class] = paths
		folders[class] = cdir
		if len(skips) > 0 {
			skipped[class] = skips
		}
	}
	return files, folders, skipped, nil
}

// rejectStrayClasses fails when a split root also holds class folders with
// images directly under it: that dataset is probably a flat folder with a
// class that happens to be called "test", and guessing either way would
// silently drop classes.
func rejectStrayClasses(root string, others []string) error {
	var stray []string
	for _, name := range others {
		paths, _, err := listImages(filepath.Join(root, name))
		if err != nil {
			return err
		}
		if len(paths) > 0 {
			stray = append(stray, name)
		}
	}
	if len(stray) > 0 {
		return fmt.Errorf("augment: %s: has split folders (train/validation/test) and also image folders %s; "+
			"move the class folders into the splits", root, strings.Join(stray, ", "))
	}
	return nil
}

// listSubdirs returns the names of the visible folders in dir, sorted,
// following symbolic links.
func listSubdirs(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("augment: %s: cannot list folder: %w", dir, unwrapPathError(err))
	}
	var names []string
	for _, e := range entries {
		if isHidden(e.Name()) {
			continue
		}
		isDir := e.IsDir()
		if e.Type()&os.ModeSymlink != 0 {
			if info, err := os.Stat(filepath.Join(dir, e.Name())); err == nil {
				isDir = info.IsDir()
			}
		}
		if isDir {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	return names, nil
}

// listImages returns the sorted paths of the visible image files in dir,
// and the files with an image extension that are not regular files (named
// pipes, devices, sockets) with the reason they are skipped: opening a
// named pipe waits for a writer, so listing them would hang the reader.
// A broken symbolic link with an image extension is kept, so that the
// loader reports it instead of it vanishing silently. The type is checked
// again when a file is opened (see openRegular), as it may change between.
func listImages(dir string) ([]string, []SkippedFile, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("augment: %s: cannot list folder: %w", dir, unwrapPathError(err))
	}
	var paths []string
	var skipped []SkippedFile
	for _, e := range entries {
		name := e.Name()
		if isHidden(name) || !HasImageExtension(name) {
			continue
		}
		p := filepath.Join(dir, name)
		mode := e.Type() // the Lstat type, from the listing itself
		if mode&os.ModeSymlink != 0 {
			info, err := os.Stat(p)
			if err != nil {
				paths = append(paths, p) // broken: the loader reports it
				continue
			}
			mode = info.Mode().Type()
		}
		switch {
		case mode.IsDir():
		case mode.IsRegular():
			paths = append(paths, p)
		default:
			skipped = append(skipped, SkippedFile{Path: p, Reason: notRegularError(mode).Error() + "; skipped"})
		}
	}
	sort.Strings(paths)
	return paths, skipped, nil
}

func isHidden(name string) bool { return strings.HasPrefix(name, ".") }

// HasImageExtension reports whether name ends in one of the extensions Open
// lists as images (.jpg, .jpeg, .png, .gif, .webp, .bmp), in any letter
// case. Importers use it so that every image they write is one Open finds.
func HasImageExtension(name string) bool {
	ext := strings.ToLower(filepath.Ext(name))
	for _, e := range imageExtensions {
		if ext == e {
			return true
		}
	}
	return false
}
