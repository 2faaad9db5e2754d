package augment

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
)

// CheckTraining reports, before any training starts, every problem that
// would make a training run on d fail or be meaningless: a missing train or
// validation split, fewer than two classes, an empty class folder (naming
// the folder and the split), and a class with training images but no
// validation images (or the reverse). It returns nil when d can be trained
// on; otherwise an error with one problem per line.
//
// The test split is optional and is not checked.
func (d *Dataset) CheckTraining() error {
	if d.Layout == LayoutFlat {
		return fmt.Errorf("augment: %s: is a folder of class folders with no splits; training needs "+
			"%s and %s folders (any letter case), each holding one folder per class",
			d.Root, filepath.Join(d.Root, "Train"), filepath.Join(d.Root, "Validation"))
	}

	var problems []error
	for _, split := range [...]string{SplitTrain, SplitValidation} {
		if _, ok := d.Splits[split]; !ok {
			problems = append(problems, fmt.Errorf("augment: %s: no %s split: expected a folder %s (or %s)",
				d.Root, split, filepath.Join(d.Root, capitalize(split)), filepath.Join(d.Root, split)))
		}
	}
	if n := len(d.Classes); n < 2 {
		problems = append(problems, fmt.Errorf("augment: %s: found %d class%s (%s); training needs at least two",
			d.Root, n, plural(n, "", "es"), strings.Join(d.Classes, ", ")))
	}
	if len(problems) > 0 {
		// Per-class checks would only repeat these problems.
		return errors.Join(problems...)
	}

	train, validation := d.Counts(SplitTrain), d.Counts(SplitValidation)
	for label, class := range d.Classes {
		problems = appendClassProblem(problems, d, SplitTrain, label, class, train[label], validation[label])
		problems = appendClassProblem(problems, d, SplitValidation, label, class, validation[label], train[label])
	}
	return errors.Join(problems...)
}

// appendClassProblem adds the problem, if any, of one class in one split:
// count is its number of images there, otherCount its number in the other
// split (train ↔ validation).
func appendClassProblem(problems []error, d *Dataset, split string, label int, class string, count, otherCount int) []error {
	if count > 0 {
		return problems
	}
	other := SplitValidation
	if split == SplitValidation {
		other = SplitTrain
	}
	if dir := d.classDir(split, label); dir != "" {
		return append(problems, fmt.Errorf("augment: %s: class %q has no images in the %s split (empty folder; "+
			"looked for %s)", dir, class, split, strings.Join(imageExtensions[:], " ")))
	}
	return append(problems, fmt.Errorf("augment: %s: class %q has %d %s image%s but no images in the %s split "+
		"(no folder %s)", d.splitDir(split), class, otherCount, other, plural(otherCount, "", "s"), split,
		filepath.Join(d.splitDir(split), class)))
}

// classDir is the folder of a class in a split, or "" when there is none.
func (d *Dataset) classDir(split string, label int) string {
	dirs := d.classDirs[split]
	if label < len(dirs) {
		return dirs[label]
	}
	return ""
}

// splitDir is the folder of a split as found on disk, or its expected path
// for a Dataset built by hand.
func (d *Dataset) splitDir(split string) string {
	if dir, ok := d.splitDirs[split]; ok {
		return dir
	}
	return filepath.Join(d.Root, capitalize(split))
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
