// Package fmnist converts Fashion-MNIST's IDX files into the class folders
// of PNGs that package augment reads: see Convert. It also reads IDX files
// (the MNIST format) on their own.
package fmnist

import (
	"errors"
	"fmt"
	"image"
	"image/png"
	"io/fs"
	"math"
	"math/rand"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
)

// classes are the class folder names of Fashion-MNIST's labels 0–9.
var classes = []string{"t-shirt", "trouser", "pullover", "dress", "coat",
	"sandal", "shirt", "sneaker", "bag", "ankle-boot"}

// Classes returns the class folder names of Fashion-MNIST's labels 0–9, in
// label order.
func Classes() []string { return slices.Clone(classes) }

// The four IDX files of Fashion-MNIST, each found as is or gzipped (.gz).
const (
	trainImagesFile = "train-images-idx3-ubyte"
	trainLabelsFile = "train-labels-idx1-ubyte"
	testImagesFile  = "t10k-images-idx3-ubyte"
	testLabelsFile  = "t10k-labels-idx1-ubyte"
)

// splitDirs are the split folders Convert writes, in order.
var splitDirs = []string{"Train", "Validation", "Test"}

// Options configures Convert.
type Options struct {
	// Src is the folder of the four IDX files (train-images-idx3-ubyte,
	// train-labels-idx1-ubyte, t10k-images-idx3-ubyte,
	// t10k-labels-idx1-ubyte), each as is or gzipped (.gz).
	Src string
	// Out is the output folder; it must be absent or empty (the .tmp-*
	// folders of an interrupted conversion aside, which are removed).
	Out string
	// Classes are the classes to keep, by name (see Classes); none means
	// all ten.
	Classes []string
	// ValFraction is the fraction of the kept training images that go to
	// Validation, in [0, 1).
	ValFraction float64
	// Seed drives the shuffle of the training images before the split.
	Seed int64
	// TrainLimit, when positive, keeps at most that many training images
	// (after class selection, before the split).
	TrainLimit int
	// Workers is the number of goroutines encoding PNGs; below 1 means 1.
	Workers int
}

// Summary counts the images Convert wrote.
type Summary struct {
	// Classes are the class folders written, in label order.
	Classes []string
	// Splits are the split folders written: Train, Validation, Test.
	Splits []string
	// Counts holds, per split, the images of each class (in Classes
	// order).
	Counts map[string][]int
}

// SourceError is the error of a source folder that is missing or lacks one
// of the four IDX files: the usual first-run problem, for which a caller
// may want to say how to get the dataset.
type SourceError struct {
	// Dir is the source folder.
	Dir string
	// File is the IDX file missing (as neither File nor File.gz), or ""
	// when Dir itself is missing or not a folder.
	File string
}

// Error names the folder and what it lacks.
func (e *SourceError) Error() string {
	if e.File == "" {
		return fmt.Sprintf("fmnist: %s: no Fashion-MNIST folder", e.Dir)
	}
	return fmt.Sprintf("fmnist: %s: no %s or %s.gz", e.Dir, e.File, e.File)
}

// Convert writes Out/Train, Out/Validation and Out/Test, each with one
// folder per kept class of 28×28 gray PNGs named after the image's index in
// its IDX file. The training file is split into Train and Validation by a
// shuffle seeded with Seed; t10k becomes Test. Files are written into
// Out/.tmp-* and moved into place at the end.
func Convert(o Options) (*Summary, error) {
	if o.Out == "" {
		return nil, errors.New("fmnist: no output folder")
	}
	if o.ValFraction < 0 || o.ValFraction >= 1 || math.IsNaN(o.ValFraction) {
		return nil, fmt.Errorf("fmnist: validation fraction %g must be in [0, 1)", o.ValFraction)
	}
	if o.TrainLimit < 0 {
		return nil, fmt.Errorf("fmnist: train limit %d must not be negative", o.TrainLimit)
	}
	if o.Workers < 1 {
		o.Workers = 1
	}
	kept, labelToClass, err := selectClasses(o.Classes)
	if err != nil {
		return nil, err
	}
	if info, err := os.Stat(o.Src); err != nil || !info.IsDir() {
		return nil, &SourceError{Dir: o.Src}
	}
	paths := map[string]string{}
	for _, base := range []string{trainImagesFile, trainLabelsFile, testImagesFile, testLabelsFile} {
		p, err := FindIDX(o.Src, base)
		if err != nil {
			return nil, &SourceError{Dir: o.Src, File: base}
		}
		paths[base] = p
	}
	if err := prepareOut(o.Out); err != nil {
		return nil, err
	}

	trainImgs, trainLabels, err := ReadPair(paths[trainImagesFile], paths[trainLabelsFile], len(classes))
	if err != nil {
		return nil, err
	}
	testImgs, testLabels, err := ReadPair(paths[testImagesFile], paths[testLabelsFile], len(classes))
	if err != nil {
		return nil, err
	}

	// Train/validation: shuffle the selected training images, keep the
	// first TrainLimit, and send the first ValFraction to Validation.
	var trainIdx []int
	for i, l := range trainLabels {
		if labelToClass[l] >= 0 {
			trainIdx = append(trainIdx, i)
		}
	}
	rng := rand.New(rand.NewSource(o.Seed))
	rng.Shuffle(len(trainIdx), func(i, j int) { trainIdx[i], trainIdx[j] = trainIdx[j], trainIdx[i] })
	if o.TrainLimit > 0 && o.TrainLimit < len(trainIdx) {
		trainIdx = trainIdx[:o.TrainLimit]
	}
	nVal := int(math.Round(o.ValFraction * float64(len(trainIdx))))
	var testIdx []int
	for i, l := range testLabels {
		if labelToClass[l] >= 0 {
			testIdx = append(testIdx, i)
		}
	}

	tmp, err := os.MkdirTemp(o.Out, ".tmp-fashion-mnist-")
	if err != nil {
		return nil, err
	}
	sum := &Summary{Classes: kept, Splits: slices.Clone(splitDirs), Counts: map[string][]int{}}
	jobs := []struct {
		split  string
		imgs   *Images
		labels []byte
		idx    []int
	}{
		{"Train", trainImgs, trainLabels, trainIdx[nVal:]},
		{"Validation", trainImgs, trainLabels, trainIdx[:nVal]},
		{"Test", testImgs, testLabels, testIdx},
	}
	for _, j := range jobs {
		counts := make([]int, len(kept))
		for _, class := range kept {
			if err := os.MkdirAll(filepath.Join(tmp, j.split, class), 0o755); err != nil {
				return nil, err
			}
		}
		for _, i := range j.idx {
			counts[labelToClass[j.labels[i]]]++
		}
		sum.Counts[j.split] = counts
		if err := writePNGs(tmp, j.split, j.imgs, j.labels, j.idx, kept, labelToClass, o.Workers); err != nil {
			return nil, err
		}
	}
	for _, split := range splitDirs {
		if err := os.Rename(filepath.Join(tmp, split), filepath.Join(o.Out, split)); err != nil {
			return nil, err
		}
	}
	if err := os.Remove(tmp); err != nil {
		return nil, err
	}
	return sum, nil
}

// selectClasses returns the classes kept, in label order, and the index of
// each label's class among them (-1: dropped).
func selectClasses(want []string) ([]string, []int, error) {
	labelToClass := make([]int, 256)
	for i := range labelToClass {
		labelToClass[i] = -1
	}
	keep := make([]bool, len(classes))
	if len(want) == 0 {
		for i := range keep {
			keep[i] = true
		}
	}
	for _, w := range want {
		name := strings.ToLower(strings.TrimSpace(w))
		found := false
		for i, c := range classes {
			if c == name {
				if keep[i] {
					return nil, nil, fmt.Errorf("fmnist: the classes name %s twice", c)
				}
				keep[i], found = true, true
			}
		}
		if !found {
			return nil, nil, fmt.Errorf("fmnist: unknown class %q: Fashion-MNIST's classes are %s", w, strings.Join(classes, ", "))
		}
	}
	var kept []string
	for i, k := range keep {
		if k {
			labelToClass[i] = len(kept)
			kept = append(kept, classes[i])
		}
	}
	return kept, labelToClass, nil
}

// prepareOut creates out, or checks that it is empty. Leftover .tmp-*
// folders of an interrupted conversion are removed.
func prepareOut(out string) error {
	entries, err := os.ReadDir(out)
	if errors.Is(err, fs.ErrNotExist) {
		return os.MkdirAll(out, 0o755)
	}
	if err != nil {
		return err
	}
	var stale []string
	for _, e := range entries {
		if e.IsDir() && strings.HasPrefix(e.Name(), ".tmp-") {
			stale = append(stale, filepath.Join(out, e.Name()))
			continue
		}
		return fmt.Errorf("fmnist: %s is not empty (it has %s): choose another output folder", out, e.Name())
	}
	for _, s := range stale {
		if err := os.RemoveAll(s); err != nil {
			return err
		}
	}
	return nil
}

// writePNGs writes the images idx of imgs as root/split/<class>/NNNNN.png,
// on workers goroutines, and returns the first error.
func writePNGs(root, split string, imgs *Images, labels []byte, idx []int, classes []string, labelToClass []int, workers int) error {
	ch := make(chan int)
	errc := make(chan error, workers)
	var wg sync.WaitGroup
	var once sync.Once
	done := make(chan struct{})
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range ch {
				class := classes[labelToClass[labels[i]]]
				p := filepath.Join(root, split, class, fmt.Sprintf("%05d.png", i))
				if err := writeGrayPNG(p, imgs.Image(i), imgs.Cols, imgs.Rows); err != nil {
					errc <- err
					once.Do(func() { close(done) })
					return
				}
			}
		}()
	}
feed:
	for _, i := range idx {
		select {
		case ch <- i:
		case <-done:
			break feed
		}
	}
	close(ch)
	wg.Wait()
	select {
	case err := <-errc:
		return err
	default:
		return nil
	}
}

func writeGrayPNG(path string, pix []byte, w, h int) error {
	img := &image.Gray{Pix: pix, Stride: w, Rect: image.Rect(0, 0, w, h)}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := png.Encode(f, img); err != nil {
		f.Close()
		return fmt.Errorf("fmnist: %s: %w", path, err)
	}
	return f.Close()
}
