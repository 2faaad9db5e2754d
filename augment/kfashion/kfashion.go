// This file holds the importer's entry point, Import, with its options,
// settings and summary types, the import flow, the skip counts of the
// summary and the parallel helper the stages share.

package kfashion

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/kfash-tf/kfash-tf/internal/atomicfile"
)

// Crop modes of Options.Crop.
const (
	// CropNone imports the photos as they are.
	CropNone = "none"
	// CropOutfit crops each photo to the union of its garment boxes
	// plus CropMargin and writes it as JPEG.
	CropOutfit = "outfit"
)

// Image checks of Options.Verify.
const (
	// VerifyFull decodes every picked image.
	VerifyFull = "full"
	// VerifyHeader reads only the image header (size and format):
	// faster, but a file truncated after its header passes.
	VerifyHeader = "header"
)

// CropMargin is the margin CropOutfit adds on each side of the
// union of the garment boxes, as a fraction of the union's width (left and
// right) and height (top and bottom), so that the crop does not cut the
// garments' edges.
const CropMargin = 0.05

// SummaryFile and ManifestFile are the files Import
// writes next to the Train and Validation folders.
const (
	SummaryFile  = "import-summary.json"
	ManifestFile = "manifest.csv"
)

// summaryFormat marks an import-summary.json as written by Import.
const summaryFormat = "kfash-tf/import-kfashion/1"

// Progress stages of Import.
const (
	// StageScan lists Options.Src: Done counts label and image files
	// found; Total is 0 until the last call, where it equals Done.
	StageScan = "scan"
	// StageLabels parses the label files.
	StageLabels = "labels"
	// StageImages checks and writes the picked images: Done counts
	// the images imported, Total the images to import.
	StageImages = "images"
)

// Reasons a label or image is not imported, as reported in
// Skip.Reason.
const (
	SkipUnreadableJSON    = "unreadable_json"
	SkipNoStyle           = "no_style"
	SkipUnknownStyle      = "unknown_style"
	SkipLabelWithoutImage = "label_without_image"
	SkipImageWithoutLabel = "image_without_label"
	SkipDuplicateID       = "duplicate_id"
	SkipUnreadableImage   = "unreadable_image"
	SkipNoGarmentBox      = "no_garment_box"
)

// skipReasons lists the skip reasons in report order, with what each
// means.
var skipReasons = [...]struct{ reason, description string }{
	{SkipUnreadableJSON, "label file is not valid JSON or not a K-Fashion label"},
	{SkipNoStyle, "label has no style (스타일 is [{}], empty or missing)"},
	{SkipUnknownStyle, "label's style is not one of the 23 K-Fashion styles"},
	{SkipLabelWithoutImage, "label has no image with its id"},
	{SkipImageWithoutLabel, "image has no label with its id"},
	{SkipDuplicateID, "another file has the same id (plain files are kept before zip members, then the first by path)"},
	{SkipUnreadableImage, "picked image cannot be read or decoded (replaced by the next one; unpicked images are not checked)"},
	{SkipNoGarmentBox, "outfit crop: label has no garment box inside the image (replaced by the next one)"},
}

// maxExamples is how many example paths the summary keeps per skip
// reason.
const maxExamples = 5

// Size limits of the files read into memory: a label is a few kilobytes, a
// photo a few megabytes; anything far larger is not what it claims to be.
const (
	maxLabelBytes = 32 << 20
	maxImageBytes = 256 << 20
)

// Options configures Import.
type Options struct {
	// Src is the AI Hub download: a folder, searched recursively, holding
	// label (.json) and image files and/or .zip archives of them, or a
	// single .zip archive.
	Src string
	// Out is the folder that receives Train/<Style>/ and Validation/<Style>/.
	// It must be empty, absent, or a previous import with the same settings
	// (which is replaced).
	Out string
	// Styles are the styles to import, by Korean or English name; each
	// becomes a class folder named by its English name.
	Styles []string
	// TrainPerClass and ValPerClass are the images of each style that go
	// to Train and Validation.
	TrainPerClass, ValPerClass int
	// Seed drives the per-style shuffle that picks the images.
	Seed int64
	// Crop is CropNone (the default when empty) or CropOutfit.
	Crop string
	// Verify is VerifyFull (the default when empty) or VerifyHeader.
	Verify string
	// Workers is the number of goroutines reading labels and images;
	// 0 means runtime.NumCPU().
	Workers int
	// Progress, when set, is called as the import advances (from one
	// goroutine at a time); see the Stage constants.
	Progress func(Progress)
}

// Progress is one progress report of Import.
type Progress struct {
	Stage       string
	Done, Total int
}

// Settings are the options that decide an import's content; a
// previous import in Options.Out is replaced only when its settings are
// equal.
type Settings struct {
	Src           string   `json:"src"`
	Styles        []string `json:"styles"`
	TrainPerClass int      `json:"train_per_class"`
	ValPerClass   int      `json:"val_per_class"`
	Seed          int64    `json:"seed"`
	Crop          string   `json:"crop"`
	CropMargin    float64  `json:"crop_margin,omitempty"`
	Verify        string   `json:"verify"`
}

// Summary is what Import did; it is also written to Out/SummaryFile.
type Summary struct {
	Format   string   `json:"format"`
	Settings Settings `json:"settings"`
	// Finished is when the import completed (RFC 3339).
	Finished string `json:"finished"`
	// Replaced is true when a previous import in Out was replaced.
	Replaced bool `json:"replaced"`
	// LabelFiles and ImageFiles count the files found in Src; Archives
	// the zip archives read.
	LabelFiles int `json:"label_files"`
	ImageFiles int `json:"image_files"`
	Archives   int `json:"archives"`
	// Classes has one entry per imported style, in Styles order.
	Classes []Class `json:"classes"`
	// OtherStyles counts label–image pairs of styles not imported.
	OtherStyles int `json:"other_styles"`
	// NotPicked counts pairs of imported styles left out because the
	// style had more than TrainPerClass + ValPerClass images.
	NotPicked int `json:"not_picked"`
	// Skipped lists, per reason (non-zero counts only), the labels and
	// images that could not be used.
	Skipped []Skip `json:"skipped"`
	// Linked, Copied and Written count the output images that are hard
	// links to the source, copies of it, or written (zip members, crops).
	Linked  int `json:"linked"`
	Copied  int `json:"copied"`
	Written int `json:"written"`
	// Warnings are problems that did not stop the import, such as a style
	// with fewer images than requested.
	Warnings []string `json:"warnings"`
}

// Class counts one style's images.
type Class struct {
	// Style is the class folder name (English); Korean the label's name.
	Style  string `json:"style"`
	Korean string `json:"korean"`
	// Found counts the label–image pairs of this style in Src.
	Found      int `json:"found"`
	Train      int `json:"train"`
	Validation int `json:"validation"`
}

// Skip counts the files skipped for one reason.
type Skip struct {
	Reason      string   `json:"reason"`
	Description string   `json:"description"`
	Count       int      `json:"count"`
	Examples    []string `json:"examples"`
}

// Import builds a Train/Validation style dataset from AI Hub's
// K-Fashion download (one JSON label per photo).
//
// Labels and images are paired by file name stem (1234.json ↔ 1234.jpg),
// falling back to the label's 이미지 파일명 and 이미지 식별자. The style is
// 데이터셋 정보 → 데이터셋 상세설명 → 라벨링 → 스타일[0].스타일. For each
// requested style the pairs are sorted by id, shuffled with a generator
// seeded by Seed and the style's name (so a style's pick does not depend on
// the other styles asked for), and taken in that order; each taken image is
// checked (see Options.Verify), and a bad one is replaced by the
// next. The first TrainPerClass go to Train, the next ValPerClass to
// Validation; a style with fewer images is split in the same proportion and
// a warning says so.
//
// Plain files are hard-linked into Out when possible, else copied; zip
// members are read in place and written, crops are written as JPEG. The
// folders are built in Out/.tmp-* and moved into place at the end, then
// manifest.csv and import-summary.json are written atomically.
func Import(o Options) (*Summary, error) {
	settings, styles, err := o.normalize()
	if err != nil {
		return nil, err
	}
	if o.Workers <= 0 {
		o.Workers = runtime.NumCPU()
	}
	outAbs, err := filepath.Abs(o.Out)
	if err != nil {
		return nil, err
	}
	replace, err := checkOut(o.Out, settings)
	if err != nil {
		return nil, err
	}

	im := &importer{o: o, settings: settings, styles: styles, skips: newSkipCounter(),
		sum: &Summary{Format: summaryFormat, Settings: settings, Replaced: replace, Warnings: []string{}}}
	src, err := scanSource(settings.Src, outAbs, func(n int) { im.progress(StageScan, n, 0) })
	if err != nil {
		return nil, err
	}
	defer src.close()
	im.src = src
	im.sum.LabelFiles, im.sum.ImageFiles, im.sum.Archives = len(src.labels), len(src.images), len(src.archives)
	im.sum.Warnings = append(im.sum.Warnings, src.warnings...)
	im.progress(StageScan, len(src.labels)+len(src.images), len(src.labels)+len(src.images))
	if len(src.labels) == 0 || len(src.images) == 0 {
		return nil, fmt.Errorf("kfashion: %s: found %d label (.json) and %d image files: expected AI Hub's K-Fashion download "+
			"(…/라벨링데이터/<style>/<id>.json and …/원천데이터/<style>/<id>.jpg, as folders or .zip archives)",
			settings.Src, len(src.labels), len(src.images))
	}

	if err := im.readLabels(); err != nil {
		return nil, err
	}
	im.pair()
	if err := im.checkFound(); err != nil {
		return nil, err
	}

	if err := prepareOut(o.Out); err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp(o.Out, ".tmp-import-kfashion-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp) // a no-op once the splits are moved out and tmp removed
	rows, err := im.importAll(tmp)
	if err != nil {
		return nil, err
	}
	if err := moveSplits(o.Out, tmp, replace); err != nil {
		return nil, err
	}
	if err := writeManifest(filepath.Join(o.Out, ManifestFile), rows); err != nil {
		return nil, err
	}
	im.sum.Skipped = im.skips.report()
	im.sum.Finished = time.Now().Format(time.RFC3339)
	data, err := json.MarshalIndent(im.sum, "", "  ")
	if err != nil {
		return nil, err
	}
	// The summary is written last: its presence marks a complete import.
	if err := atomicfile.WriteFile(filepath.Join(o.Out, SummaryFile), append(data, '\n')); err != nil {
		return nil, err
	}
	return im.sum, nil
}

// normalize checks the options and returns the settings recorded in the
// summary and the styles, in the order asked for.
func (o Options) normalize() (Settings, []Style, error) {
	var s Settings
	if o.Src == "" {
		return s, nil, errors.New("kfashion: no source folder")
	}
	if o.Out == "" {
		return s, nil, errors.New("kfashion: no output folder")
	}
	if o.TrainPerClass < 1 {
		return s, nil, fmt.Errorf("kfashion: train images per class %d must be at least 1", o.TrainPerClass)
	}
	if o.ValPerClass < 0 {
		return s, nil, fmt.Errorf("kfashion: validation images per class %d must not be negative", o.ValPerClass)
	}
	crop := o.Crop
	if crop == "" {
		crop = CropNone
	}
	if crop != CropNone && crop != CropOutfit {
		return s, nil, fmt.Errorf("kfashion: unknown crop %q: use %s or %s", o.Crop, CropNone, CropOutfit)
	}
	verify := o.Verify
	if verify == "" {
		verify = VerifyFull
	}
	if verify != VerifyFull && verify != VerifyHeader {
		return s, nil, fmt.Errorf("kfashion: unknown image check %q: use %s or %s", o.Verify, VerifyFull, VerifyHeader)
	}
	var styles []Style
	var names []string
	for _, w := range o.Styles {
		if strings.TrimSpace(w) == "" {
			continue
		}
		st, ok := LookupStyle(w)
		if !ok {
			return s, nil, fmt.Errorf("kfashion: unknown K-Fashion style %q: use one of %s", w, styleList())
		}
		if slices.Contains(names, st.English) {
			return s, nil, fmt.Errorf("kfashion: the styles name %s (%s) twice", st.English, st.Korean)
		}
		styles = append(styles, st)
		names = append(names, st.English)
	}
	if len(styles) == 0 {
		return s, nil, fmt.Errorf("kfashion: no styles: name some of %s", styleList())
	}
	src, err := filepath.Abs(o.Src)
	if err != nil {
		return s, nil, err
	}
	s = Settings{Src: src, Styles: names, TrainPerClass: o.TrainPerClass, ValPerClass: o.ValPerClass,
		Seed: o.Seed, Crop: crop, Verify: verify}
	if crop == CropOutfit {
		s.CropMargin = CropMargin
	}
	return s, styles, nil
}

// styleList names the 23 styles for error messages.
func styleList() string {
	parts := make([]string, len(styleTable))
	for i, s := range styleTable {
		parts[i] = s.English + " (" + s.Korean + ")"
	}
	return strings.Join(parts, ", ")
}

// diff lists the settings in which s differs from prev, in the order of
// Settings' fields; none when they are the same (style order aside, which
// does not change the folders written).
func (s Settings) diff(prev Settings) []SettingDiff {
	var d []SettingDiff
	add := func(name string, now, was any) {
		if n, w := fmt.Sprint(now), fmt.Sprint(was); n != w {
			d = append(d, SettingDiff{Name: name, Now: n, Was: w})
		}
	}
	add("src", s.Src, prev.Src)
	a, b := slices.Clone(s.Styles), slices.Clone(prev.Styles)
	sort.Strings(a)
	sort.Strings(b)
	add("styles", strings.Join(a, ","), strings.Join(b, ","))
	add("train_per_class", s.TrainPerClass, prev.TrainPerClass)
	add("val_per_class", s.ValPerClass, prev.ValPerClass)
	add("seed", s.Seed, prev.Seed)
	add("crop", s.Crop, prev.Crop)
	add("crop_margin", s.CropMargin, prev.CropMargin)
	add("verify", s.Verify, prev.Verify)
	return d
}

// SettingsError is the error of an import into a folder that holds an
// import made with other settings: a previous import is replaced only when
// the new one is asked for with the same settings, so that a typo cannot
// wipe out a different dataset.
type SettingsError struct {
	// Out is the output folder.
	Out string
	// Diffs lists the settings that differ, in the order of Settings'
	// fields.
	Diffs []SettingDiff
}

// SettingDiff is one setting in which an import differs from the previous
// import in its output folder.
type SettingDiff struct {
	// Name is the setting's key in import-summary.json: src, styles,
	// train_per_class, val_per_class, seed, crop, crop_margin or verify.
	Name string
	// Now is the value asked for and Was the previous import's, as text
	// (styles sorted and comma-separated).
	Now, Was string
}

// Error names the folder and every setting that differs.
func (e *SettingsError) Error() string {
	d := make([]string, len(e.Diffs))
	for i, x := range e.Diffs {
		d[i] = fmt.Sprintf("%s %s (it has %s)", x.Name, x.Now, x.Was)
	}
	return fmt.Sprintf("kfashion: %s holds an import made with other settings (%s): choose another output folder, or delete %s to import again",
		e.Out, strings.Join(d, "; "), e.Out)
}

// importer holds the state of one Import call.
type importer struct {
	o        Options
	settings Settings
	styles   []Style
	src      *source
	labels   []*labelFile
	cands    [][]*candidate // per requested style
	skips    *skipCounter
	sum      *Summary

	progressMu sync.Mutex
	imported   int // images done, for progress
}

func (im *importer) progress(stage string, done, total int) {
	if im.o.Progress == nil {
		return
	}
	im.progressMu.Lock()
	defer im.progressMu.Unlock()
	im.o.Progress(Progress{Stage: stage, Done: done, Total: total})
}

// skipCounter counts skipped files by reason, keeping a few examples.
type skipCounter struct {
	counts   map[string]int
	examples map[string][]string
}

func newSkipCounter() *skipCounter {
	return &skipCounter{counts: map[string]int{}, examples: map[string][]string{}}
}

func (s *skipCounter) add(reason, example string) {
	s.counts[reason]++
	if len(s.examples[reason]) < maxExamples {
		s.examples[reason] = append(s.examples[reason], example)
	}
}

// report lists the reasons with a non-zero count, in report order.
func (s *skipCounter) report() []Skip {
	out := []Skip{}
	for _, r := range skipReasons {
		if n := s.counts[r.reason]; n > 0 {
			out = append(out, Skip{Reason: r.reason, Description: r.description, Count: n, Examples: s.examples[r.reason]})
		}
	}
	return out
}

// parallelFor runs fn(0) … fn(n-1) on up to workers goroutines and returns
// the first error; after an error no new index is started.
func parallelFor(workers, n int, fn func(i int) error) error {
	workers = max(1, min(workers, n))
	next := make(chan int)
	var wg sync.WaitGroup
	var once sync.Once
	var firstErr error
	stop := make(chan struct{})
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := fn(i); err != nil {
					once.Do(func() { firstErr = err; close(stop) })
				}
			}
		}()
	}
feed:
	for i := 0; i < n; i++ {
		select {
		case next <- i:
		case <-stop:
			break feed
		}
	}
	close(next)
	wg.Wait()
	return firstErr
}
