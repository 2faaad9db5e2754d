// This file holds the K-Fashion importer's entry point: ImportKFashion, its
// options, settings and summary types, the import flow, the skip counts of
// the summary and the parallel helper the stages share.

package augment

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

// Crop modes of KFashionOptions.Crop.
const (
	// KFashionCropNone imports the photos as they are.
	KFashionCropNone = "none"
	// KFashionCropOutfit crops each photo to the union of its garment boxes
	// plus KFashionCropMargin and writes it as JPEG.
	KFashionCropOutfit = "outfit"
)

// Image checks of KFashionOptions.Verify.
const (
	// KFashionVerifyFull decodes every picked image.
	KFashionVerifyFull = "full"
	// KFashionVerifyHeader reads only the image header (size and format):
	// faster, but a file truncated after its header passes.
	KFashionVerifyHeader = "header"
)

// KFashionCropMargin is the margin --crop outfit adds on each side of the
// union of the garment boxes, as a fraction of the union's width (left and
// right) and height (top and bottom), so that the crop does not cut the
// garments' edges.
const KFashionCropMargin = 0.05

// KFashionSummaryFile and KFashionManifestFile are the files ImportKFashion
// writes next to the Train and Validation folders.
const (
	KFashionSummaryFile  = "import-summary.json"
	KFashionManifestFile = "manifest.csv"
)

// kfashionFormat marks an import-summary.json as written by ImportKFashion.
const kfashionFormat = "kfash-tf/import-kfashion/1"

// Progress stages of ImportKFashion.
const (
	// KFashionStageScan lists --src: Done counts label and image files
	// found; Total is 0 until the last call, where it equals Done.
	KFashionStageScan = "scan"
	// KFashionStageLabels parses the label files.
	KFashionStageLabels = "labels"
	// KFashionStageImages checks and writes the picked images: Done counts
	// the images imported, Total the images to import.
	KFashionStageImages = "images"
)

// Reasons a label or image is not imported, as reported in
// KFashionSkip.Reason.
const (
	KFashionSkipUnreadableJSON    = "unreadable_json"
	KFashionSkipNoStyle           = "no_style"
	KFashionSkipUnknownStyle      = "unknown_style"
	KFashionSkipLabelWithoutImage = "label_without_image"
	KFashionSkipImageWithoutLabel = "image_without_label"
	KFashionSkipDuplicateID       = "duplicate_id"
	KFashionSkipUnreadableImage   = "unreadable_image"
	KFashionSkipNoGarmentBox      = "no_garment_box"
)

// kfashionSkipReasons lists the skip reasons in report order, with what each
// means.
var kfashionSkipReasons = [...]struct{ reason, description string }{
	{KFashionSkipUnreadableJSON, "label file is not valid JSON or not a K-Fashion label"},
	{KFashionSkipNoStyle, "label has no style (스타일 is [{}], empty or missing)"},
	{KFashionSkipUnknownStyle, "label's style is not one of the 23 K-Fashion styles"},
	{KFashionSkipLabelWithoutImage, "label has no image with its id"},
	{KFashionSkipImageWithoutLabel, "image has no label with its id"},
	{KFashionSkipDuplicateID, "another file has the same id (plain files are kept before zip members, then the first by path)"},
	{KFashionSkipUnreadableImage, "picked image cannot be read or decoded (replaced by the next one; unpicked images are not checked)"},
	{KFashionSkipNoGarmentBox, "--crop outfit: label has no garment box inside the image (replaced by the next one)"},
}

// kfashionMaxExamples is how many example paths the summary keeps per skip
// reason.
const kfashionMaxExamples = 5

// Size limits of the files read into memory: a label is a few kilobytes, a
// photo a few megabytes; anything far larger is not what it claims to be.
const (
	kfashionMaxLabelBytes = 32 << 20
	kfashionMaxImageBytes = 256 << 20
)

// KFashionOptions configures ImportKFashion.
type KFashionOptions struct {
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
	// Crop is KFashionCropNone (the default when empty) or
	// KFashionCropOutfit.
	Crop string
	// Verify is KFashionVerifyFull (the default when empty) or
	// KFashionVerifyHeader.
	Verify string
	// Workers is the number of goroutines reading labels and images;
	// 0 means runtime.NumCPU().
	Workers int
	// Progress, when set, is called as the import advances (from one
	// goroutine at a time); see the KFashionStage constants.
	Progress func(KFashionProgress)
}

// KFashionProgress is one progress report of ImportKFashion.
type KFashionProgress struct {
	Stage       string
	Done, Total int
}

// KFashionSettings are the options that decide an import's content; a
// previous import in --out is replaced only when its settings are equal.
type KFashionSettings struct {
	Src           string   `json:"src"`
	Styles        []string `json:"styles"`
	TrainPerClass int      `json:"train_per_class"`
	ValPerClass   int      `json:"val_per_class"`
	Seed          int64    `json:"seed"`
	Crop          string   `json:"crop"`
	CropMargin    float64  `json:"crop_margin,omitempty"`
	Verify        string   `json:"verify"`
}

// KFashionSummary is what ImportKFashion did; it is also written to
// OUT/import-summary.json.
type KFashionSummary struct {
	Format   string           `json:"format"`
	Settings KFashionSettings `json:"settings"`
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
	Classes []KFashionClass `json:"classes"`
	// OtherStyles counts label–image pairs of styles not imported.
	OtherStyles int `json:"other_styles"`
	// NotPicked counts pairs of imported styles left out because the
	// style had more than TrainPerClass + ValPerClass images.
	NotPicked int `json:"not_picked"`
	// Skipped lists, per reason (non-zero counts only), the labels and
	// images that could not be used.
	Skipped []KFashionSkip `json:"skipped"`
	// Linked, Copied and Written count the output images that are hard
	// links to the source, copies of it, or written (zip members, crops).
	Linked  int `json:"linked"`
	Copied  int `json:"copied"`
	Written int `json:"written"`
	// Warnings are problems that did not stop the import, such as a style
	// with fewer images than requested.
	Warnings []string `json:"warnings"`
}

// KFashionClass counts one style's images.
type KFashionClass struct {
	// Style is the class folder name (English); Korean the label's name.
	Style  string `json:"style"`
	Korean string `json:"korean"`
	// Found counts the label–image pairs of this style in Src.
	Found      int `json:"found"`
	Train      int `json:"train"`
	Validation int `json:"validation"`
}

// KFashionSkip counts the files skipped for one reason.
type KFashionSkip struct {
	Reason      string   `json:"reason"`
	Description string   `json:"description"`
	Count       int      `json:"count"`
	Examples    []string `json:"examples"`
}

// ImportKFashion builds a Train/Validation style dataset from AI Hub's
// K-Fashion download (one JSON label per photo).
//
// Labels and images are paired by file name stem (1234.json ↔ 1234.jpg),
// falling back to the label's 이미지 파일명 and 이미지 식별자. The style is
// 데이터셋 정보 → 데이터셋 상세설명 → 라벨링 → 스타일[0].스타일. For each
// requested style the pairs are sorted by id, shuffled with a generator
// seeded by Seed and the style's name (so a style's pick does not depend on
// the other styles asked for), and taken in that order; each taken image is
// checked (see KFashionOptions.Verify), and a bad one is replaced by the
// next. The first TrainPerClass go to Train, the next ValPerClass to
// Validation; a style with fewer images is split in the same proportion and
// a warning says so.
//
// Plain files are hard-linked into Out when possible, else copied; zip
// members are read in place and written, crops are written as JPEG. The
// folders are built in Out/.tmp-* and moved into place at the end, then
// manifest.csv and import-summary.json are written atomically.
func ImportKFashion(o KFashionOptions) (*KFashionSummary, error) {
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
	replace, err := checkKFashionOut(o.Out, settings)
	if err != nil {
		return nil, err
	}

	im := &kfImporter{o: o, settings: settings, styles: styles, skips: newKFSkips(),
		sum: &KFashionSummary{Format: kfashionFormat, Settings: settings, Replaced: replace, Warnings: []string{}}}
	src, err := scanKFashionSource(settings.Src, outAbs, func(n int) { im.progress(KFashionStageScan, n, 0) })
	if err != nil {
		return nil, err
	}
	defer src.close()
	im.src = src
	im.sum.LabelFiles, im.sum.ImageFiles, im.sum.Archives = len(src.labels), len(src.images), len(src.archives)
	im.sum.Warnings = append(im.sum.Warnings, src.warnings...)
	im.progress(KFashionStageScan, len(src.labels)+len(src.images), len(src.labels)+len(src.images))
	if len(src.labels) == 0 || len(src.images) == 0 {
		return nil, fmt.Errorf("augment: %s: found %d label (.json) and %d image files: expected AI Hub's K-Fashion download "+
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

	if err := prepareKFashionOut(o.Out); err != nil {
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
	if err := moveKFashionSplits(o.Out, tmp, replace); err != nil {
		return nil, err
	}
	if err := writeKFashionManifest(filepath.Join(o.Out, KFashionManifestFile), rows); err != nil {
		return nil, err
	}
	im.sum.Skipped = im.skips.report()
	im.sum.Finished = time.Now().Format(time.RFC3339)
	data, err := json.MarshalIndent(im.sum, "", "  ")
	if err != nil {
		return nil, err
	}
	// The summary is written last: its presence marks a complete import.
	if err := atomicfile.WriteFile(filepath.Join(o.Out, KFashionSummaryFile), append(data, '\n')); err != nil {
		return nil, err
	}
	return im.sum, nil
}

// normalize checks the options and returns the settings recorded in the
// summary and the styles, in the order asked for.
func (o KFashionOptions) normalize() (KFashionSettings, []KFashionStyle, error) {
	var s KFashionSettings
	if o.Src == "" {
		return s, nil, errors.New("augment: K-Fashion import: no source folder (--src)")
	}
	if o.Out == "" {
		return s, nil, errors.New("augment: K-Fashion import: no output folder (--out)")
	}
	if o.TrainPerClass < 1 {
		return s, nil, fmt.Errorf("augment: K-Fashion import: train images per class %d must be at least 1", o.TrainPerClass)
	}
	if o.ValPerClass < 0 {
		return s, nil, fmt.Errorf("augment: K-Fashion import: validation images per class %d must not be negative", o.ValPerClass)
	}
	crop := o.Crop
	if crop == "" {
		crop = KFashionCropNone
	}
	if crop != KFashionCropNone && crop != KFashionCropOutfit {
		return s, nil, fmt.Errorf("augment: K-Fashion import: unknown crop %q: use %s or %s", o.Crop, KFashionCropNone, KFashionCropOutfit)
	}
	verify := o.Verify
	if verify == "" {
		verify = KFashionVerifyFull
	}
	if verify != KFashionVerifyFull && verify != KFashionVerifyHeader {
		return s, nil, fmt.Errorf("augment: K-Fashion import: unknown image check %q: use %s or %s", o.Verify, KFashionVerifyFull, KFashionVerifyHeader)
	}
	var styles []KFashionStyle
	var names []string
	for _, w := range o.Styles {
		if strings.TrimSpace(w) == "" {
			continue
		}
		st, ok := LookupKFashionStyle(w)
		if !ok {
			return s, nil, fmt.Errorf("augment: unknown K-Fashion style %q: use one of %s", w, kfashionStyleList())
		}
		if slices.Contains(names, st.English) {
			return s, nil, fmt.Errorf("augment: the styles name %s (%s) twice", st.English, st.Korean)
		}
		styles = append(styles, st)
		names = append(names, st.English)
	}
	if len(styles) == 0 {
		return s, nil, fmt.Errorf("augment: K-Fashion import: no styles: name some of %s", kfashionStyleList())
	}
	src, err := filepath.Abs(o.Src)
	if err != nil {
		return s, nil, err
	}
	s = KFashionSettings{Src: src, Styles: names, TrainPerClass: o.TrainPerClass, ValPerClass: o.ValPerClass,
		Seed: o.Seed, Crop: crop, Verify: verify}
	if crop == KFashionCropOutfit {
		s.CropMargin = KFashionCropMargin
	}
	return s, styles, nil
}

// kfashionStyleList names the 23 styles for error messages.
func kfashionStyleList() string {
	parts := make([]string, len(kfashionStyles))
	for i, s := range kfashionStyles {
		parts[i] = s.English + " (" + s.Korean + ")"
	}
	return strings.Join(parts, ", ")
}

// diff describes how s differs from prev, one "--flag new (was old)" per
// setting; empty when the settings are the same (style order aside, which
// does not change the folders written).
func (s KFashionSettings) diff(prev KFashionSettings) []string {
	var d []string
	add := func(flag string, now, was any) {
		if fmt.Sprint(now) != fmt.Sprint(was) {
			d = append(d, fmt.Sprintf("%s %v (it has %v)", flag, now, was))
		}
	}
	add("--src", s.Src, prev.Src)
	a, b := slices.Clone(s.Styles), slices.Clone(prev.Styles)
	sort.Strings(a)
	sort.Strings(b)
	add("--styles", strings.Join(a, ","), strings.Join(b, ","))
	add("--train-per-class", s.TrainPerClass, prev.TrainPerClass)
	add("--val-per-class", s.ValPerClass, prev.ValPerClass)
	add("--seed", s.Seed, prev.Seed)
	add("--crop", s.Crop, prev.Crop)
	add("crop margin", s.CropMargin, prev.CropMargin)
	add("--verify", s.Verify, prev.Verify)
	return d
}

// kfImporter holds the state of one ImportKFashion call.
type kfImporter struct {
	o        KFashionOptions
	settings KFashionSettings
	styles   []KFashionStyle
	src      *kfSource
	labels   []*kfLabel
	cands    [][]*kfCandidate // per requested style
	skips    *kfSkips
	sum      *KFashionSummary

	progressMu sync.Mutex
	imported   int // images done, for progress
}

func (im *kfImporter) progress(stage string, done, total int) {
	if im.o.Progress == nil {
		return
	}
	im.progressMu.Lock()
	defer im.progressMu.Unlock()
	im.o.Progress(KFashionProgress{Stage: stage, Done: done, Total: total})
}

// kfSkips counts skipped files by reason, keeping a few examples.
type kfSkips struct {
	counts   map[string]int
	examples map[string][]string
}

func newKFSkips() *kfSkips {
	return &kfSkips{counts: map[string]int{}, examples: map[string][]string{}}
}

func (s *kfSkips) add(reason, example string) {
	s.counts[reason]++
	if len(s.examples[reason]) < kfashionMaxExamples {
		s.examples[reason] = append(s.examples[reason], example)
	}
}

// report lists the reasons with a non-zero count, in report order.
func (s *kfSkips) report() []KFashionSkip {
	out := []KFashionSkip{}
	for _, r := range kfashionSkipReasons {
		if n := s.counts[r.reason]; n > 0 {
			out = append(out, KFashionSkip{Reason: r.reason, Description: r.description, Count: n, Examples: s.examples[r.reason]})
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
