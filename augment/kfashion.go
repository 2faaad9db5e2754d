package augment

import (
	"archive/zip"
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"hash/fnv"
	"image"
	"image/jpeg"
	"io"
	"io/fs"
	"math"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"golang.org/x/text/encoding/korean"
	"golang.org/x/text/unicode/norm"
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
	if err := writeFileAtomic(filepath.Join(o.Out, KFashionSummaryFile), append(data, '\n')); err != nil {
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

// kfashionOutNames are the entries an import leaves in its output folder.
var kfashionOutNames = map[string]bool{"Train": true, "Validation": true, KFashionManifestFile: true, KFashionSummaryFile: true}

// checkKFashionOut reports whether out holds a previous import with the same
// settings (to be replaced), and refuses any other non-empty folder. It
// changes nothing on disk.
func checkKFashionOut(out string, want KFashionSettings) (replace bool, err error) {
	entries, err := os.ReadDir(out)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("augment: %s: cannot use as output folder: %w", out, unwrapPathError(err))
	}
	var found []string
	for _, e := range entries {
		if isKFashionLeftover(e.Name()) {
			continue // an interrupted import's leftovers, removed later
		}
		if !kfashionOutNames[e.Name()] {
			return false, fmt.Errorf("augment: %s is not empty (it has %s) and is not a K-Fashion import: choose a new --out folder", out, e.Name())
		}
		found = append(found, e.Name())
	}
	if len(found) == 0 {
		return false, nil
	}
	summary := filepath.Join(out, KFashionSummaryFile)
	data, err := os.ReadFile(summary)
	if err != nil {
		return false, fmt.Errorf("augment: %s has %s but no readable %s (an interrupted import?): delete the folder or choose a new --out",
			out, strings.Join(found, ", "), KFashionSummaryFile)
	}
	var prev KFashionSummary
	if err := json.Unmarshal(data, &prev); err != nil || prev.Format != kfashionFormat {
		return false, fmt.Errorf("augment: %s: not an import summary of this program: delete %s or choose a new --out", summary, out)
	}
	if d := want.diff(prev.Settings); len(d) > 0 {
		return false, fmt.Errorf("augment: %s holds an import made with other settings (%s): choose a new --out folder, or delete %s to import again",
			out, strings.Join(d, "; "), out)
	}
	return true, nil
}

// prepareKFashionOut creates out if needed and removes the .tmp-* folders
// of interrupted imports.
func prepareKFashionOut(out string) error {
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	entries, err := os.ReadDir(out)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if isKFashionLeftover(e.Name()) {
			if err := os.RemoveAll(filepath.Join(out, e.Name())); err != nil {
				return err
			}
		}
	}
	return nil
}

// isKFashionLeftover reports whether an entry of the output folder is a
// temporary of an interrupted import: its .tmp-* build folder or the
// temporary file of an atomic write.
func isKFashionLeftover(name string) bool {
	return strings.HasPrefix(name, ".tmp-") || strings.HasPrefix(name, ".") && strings.Contains(name, ".tmp-")
}

// moveKFashionSplits moves tmp/Train and tmp/Validation into out. A previous
// import is moved into tmp first (its summary removed before anything else,
// so that a crash midway never leaves a summary describing other folders)
// and deleted with tmp.
func moveKFashionSplits(out, tmp string, replace bool) error {
	if replace {
		for _, name := range []string{KFashionSummaryFile, KFashionManifestFile} {
			if err := os.Remove(filepath.Join(out, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
		}
		for _, split := range []string{"Train", "Validation"} {
			err := os.Rename(filepath.Join(out, split), filepath.Join(tmp, "previous-"+split))
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
		}
	}
	for _, split := range []string{"Train", "Validation"} {
		if err := os.Rename(filepath.Join(tmp, split), filepath.Join(out, split)); err != nil {
			return err
		}
	}
	return os.RemoveAll(tmp)
}

// kfEntry is one file of the source: a plain file or a zip member.
type kfEntry struct {
	// Path names the file in messages and the manifest: its path, or
	// ARCHIVE!MEMBER for a zip member.
	Path string
	file string    // the plain file on disk (symbolic links resolved)
	zf   *zip.File // the zip member
	stem string    // base name without extension (NFC): the id
	ext  string    // extension, lower case
}

// readAll reads the whole file, refusing more than limit bytes.
func (e *kfEntry) readAll(limit int64) ([]byte, error) {
	var r io.ReadCloser
	var err error
	if e.zf != nil {
		if e.zf.UncompressedSize64 > uint64(limit) {
			return nil, fmt.Errorf("%d bytes, more than the limit of %d", e.zf.UncompressedSize64, limit)
		}
		r, err = e.zf.Open()
	} else {
		r, err = os.Open(e.file)
	}
	if err != nil {
		return nil, unwrapPathError(err)
	}
	defer r.Close()
	data, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, unwrapPathError(err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("more than the limit of %d bytes", limit)
	}
	return data, nil
}

// kfSource is the listing of --src.
type kfSource struct {
	labels, images []*kfEntry
	archives       []*zip.ReadCloser
	warnings       []string
	onFile         func(n int)
}

func (s *kfSource) close() {
	for _, a := range s.archives {
		a.Close()
	}
}

// scanKFashionSource lists the label and image files of src: a folder
// (walked recursively, skipping hidden entries, __MACOSX and the folder
// skip, which is the output) or a single zip archive. Zip archives are
// listed, not unpacked. Entries are sorted so that plain files come before
// zip members, then by path: the order duplicates are resolved in.
func scanKFashionSource(src, skip string, onFile func(n int)) (*kfSource, error) {
	info, err := os.Stat(src)
	if err != nil {
		return nil, fmt.Errorf("augment: %s: cannot read the K-Fashion source: %w", src, unwrapPathError(err))
	}
	s := &kfSource{onFile: onFile}
	if !info.IsDir() {
		if !strings.EqualFold(filepath.Ext(src), ".zip") {
			return nil, fmt.Errorf("augment: %s: the K-Fashion source must be a folder or a .zip archive", src)
		}
		if err := s.addZip(src); err != nil {
			s.close()
			return nil, err
		}
	} else if err := s.walk(src, skip); err != nil {
		s.close()
		return nil, err
	}
	for _, list := range [][]*kfEntry{s.labels, s.images} {
		sort.SliceStable(list, func(i, j int) bool {
			if (list[i].zf == nil) != (list[j].zf == nil) {
				return list[i].zf == nil
			}
			return list[i].Path < list[j].Path
		})
	}
	return s, nil
}

func (s *kfSource) walk(root, skip string) error {
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("augment: %s: cannot read: %w", p, unwrapPathError(err))
		}
		if p != root && (isHidden(d.Name()) || d.Name() == "__MACOSX") {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			if p == skip {
				return filepath.SkipDir
			}
			return nil
		}
		file := p
		if d.Type()&fs.ModeSymlink != 0 {
			// Links to files are followed (and hard-linked as their
			// target); links to folders are not, so no cycle is possible.
			target, err := filepath.EvalSymlinks(p)
			if err != nil {
				return nil // dangling: nothing to import
			}
			if fi, err := os.Stat(target); err != nil || !fi.Mode().IsRegular() {
				return nil
			}
			file = target
		} else if !d.Type().IsRegular() {
			return nil
		}
		if strings.EqualFold(filepath.Ext(p), ".zip") {
			return s.addZip(p)
		}
		s.add(&kfEntry{Path: p, file: file}, d.Name())
		return nil
	})
}

// addZip lists the members of the archive at p.
func (s *kfSource) addZip(p string) error {
	zr, err := zip.OpenReader(p)
	if err != nil {
		return fmt.Errorf("augment: %s: cannot read zip archive: %v (an incomplete download? download it again or move it out of --src)", p, err)
	}
	s.archives = append(s.archives, zr)
	for _, f := range zr.File {
		name := strings.ReplaceAll(zipMemberName(f), "\\", "/")
		if strings.HasSuffix(name, "/") || f.FileInfo().IsDir() || hiddenMember(name) {
			continue
		}
		if strings.EqualFold(path.Ext(name), ".zip") {
			s.warnings = append(s.warnings, fmt.Sprintf("%s!%s: archives inside archives are not read; unpack the outer one", p, name))
			continue
		}
		s.add(&kfEntry{Path: p + "!" + name, zf: f}, path.Base(name))
	}
	return nil
}

// add files e as a label or an image by the extension of its base name.
func (s *kfSource) add(e *kfEntry, base string) {
	base = norm.NFC.String(base)
	e.ext = strings.ToLower(path.Ext(base))
	e.stem = strings.TrimSuffix(base, path.Ext(base))
	switch {
	case e.ext == ".json":
		s.labels = append(s.labels, e)
	case hasImageExtension(base):
		s.images = append(s.images, e)
	default:
		return
	}
	if s.onFile != nil {
		s.onFile(len(s.labels) + len(s.images))
	}
}

// zipUnicodePathTag is the Info-ZIP Unicode Path extra field, in which
// archivers that store names in the system code page keep the UTF-8 name.
const zipUnicodePathTag = 0x7075

// zipMemberName returns a member's name in UTF-8. Archives made on Korean
// Windows (AI Hub's among them) often store names in CP949 without the
// UTF-8 flag. The Info-ZIP Unicode Path field wins when present and
// matching; a name that is valid UTF-8 is taken as such (CP949 Hangul is
// never valid UTF-8, and many archivers omit the flag); any other name is
// decoded as CP949.
func zipMemberName(f *zip.File) string {
	if name, ok := zipUnicodePath(f); ok {
		return name
	}
	if utf8.ValidString(f.Name) {
		return f.Name
	}
	name, err := korean.EUCKR.NewDecoder().String(f.Name)
	if err != nil {
		return strings.ToValidUTF8(f.Name, "\uFFFD")
	}
	return name
}

// zipUnicodePath reads the Info-ZIP Unicode Path extra field (version 1,
// CRC-32 of the stored name, UTF-8 name), ignoring it when its CRC shows it
// was written for another name.
func zipUnicodePath(f *zip.File) (string, bool) {
	extra := f.Extra
	for len(extra) >= 4 {
		tag := binary.LittleEndian.Uint16(extra)
		size := int(binary.LittleEndian.Uint16(extra[2:]))
		extra = extra[4:]
		if size > len(extra) {
			break
		}
		field := extra[:size]
		extra = extra[size:]
		if tag != zipUnicodePathTag || size < 5 || field[0] != 1 {
			continue
		}
		if crc32.ChecksumIEEE([]byte(f.Name)) == binary.LittleEndian.Uint32(field[1:5]) && utf8.Valid(field[5:]) {
			return string(field[5:]), true
		}
	}
	return "", false
}

// hiddenMember reports whether a zip member is in a hidden folder, is
// hidden itself, or is macOS resource-fork clutter.
func hiddenMember(name string) bool {
	for _, part := range strings.Split(name, "/") {
		if isHidden(part) || part == "__MACOSX" {
			return true
		}
	}
	return false
}

// kfLabel is what the importer keeps of one label file.
type kfLabel struct {
	entry    *kfEntry
	err      error  // why the file is unreadable
	id       string // 이미지 식별자
	fileStem string // stem of 이미지 파일명
	style    string // 스타일[0].스타일, "" when none
	subStyle string // 스타일[0].서브스타일
	width    float64
	height   float64
	boxes    []kfBox
}

// kfBox is a garment box in label pixels.
type kfBox struct{ X, Y, W, H float64 }

// flexNumber is a JSON number that also accepts a numeric string; anything
// else reads as 0, so one odd field does not make a label unreadable.
type flexNumber float64

// UnmarshalJSON implements json.Unmarshaler.
func (f *flexNumber) UnmarshalJSON(b []byte) error {
	s := strings.Trim(strings.TrimSpace(string(b)), `"`)
	v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		v = 0
	}
	*f = flexNumber(v)
	return nil
}

// kfLabelJSON is the part of a K-Fashion label the importer reads.
type kfLabelJSON struct {
	Image *struct {
		ID     json.RawMessage `json:"이미지 식별자"`
		File   json.RawMessage `json:"이미지 파일명"`
		Width  flexNumber      `json:"이미지 너비"`
		Height flexNumber      `json:"이미지 높이"`
	} `json:"이미지 정보"`
	Dataset *struct {
		Detail struct {
			Rects    map[string]json.RawMessage `json:"렉트좌표"`
			Labeling struct {
				Style json.RawMessage `json:"스타일"`
			} `json:"라벨링"`
		} `json:"데이터셋 상세설명"`
	} `json:"데이터셋 정보"`
}

type kfBoxJSON struct {
	X flexNumber `json:"X좌표"`
	Y flexNumber `json:"Y좌표"`
	W flexNumber `json:"가로"`
	H flexNumber `json:"세로"`
}

// parseKFashionLabel reads a label file's content. Fields of an unexpected
// type are ignored; only invalid JSON or a document with neither 이미지 정보
// nor 데이터셋 정보 is an error.
func parseKFashionLabel(data []byte) (*kfLabel, error) {
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	var doc kfLabelJSON
	if err := json.Unmarshal(data, &doc); err != nil {
		var te *json.UnmarshalTypeError
		if !errors.As(err, &te) {
			return nil, fmt.Errorf("invalid JSON: %w", err)
		}
	}
	if doc.Image == nil && doc.Dataset == nil {
		return nil, errors.New("not a K-Fashion label (no 이미지 정보 or 데이터셋 정보)")
	}
	l := &kfLabel{}
	if doc.Image != nil {
		l.id = jsonScalar(doc.Image.ID)
		if f := strings.ReplaceAll(jsonScalar(doc.Image.File), "\\", "/"); f != "" {
			base := norm.NFC.String(path.Base(f))
			l.fileStem = strings.TrimSuffix(base, path.Ext(base))
		}
		l.width, l.height = float64(doc.Image.Width), float64(doc.Image.Height)
	}
	if doc.Dataset != nil {
		l.style, l.subStyle = parseKFashionStyle(doc.Dataset.Detail.Labeling.Style)
		for _, raw := range doc.Dataset.Detail.Rects {
			for _, b := range parseKFashionBoxes(raw) {
				if b.W > 0 && b.H > 0 {
					l.boxes = append(l.boxes, kfBox{float64(b.X), float64(b.Y), float64(b.W), float64(b.H)})
				}
			}
		}
	}
	return l, nil
}

// parseKFashionStyle returns 스타일[0].스타일 and 스타일[0].서브스타일. A lone
// object or a plain string instead of the list is accepted too.
func parseKFashionStyle(raw json.RawMessage) (style, sub string) {
	if len(raw) == 0 {
		return "", ""
	}
	var list []map[string]json.RawMessage
	if json.Unmarshal(raw, &list) != nil {
		var one map[string]json.RawMessage
		if json.Unmarshal(raw, &one) != nil {
			return jsonScalar(raw), ""
		}
		list = append(list, one)
	}
	if len(list) == 0 {
		return "", ""
	}
	return jsonScalar(list[0]["스타일"]), jsonScalar(list[0]["서브스타일"])
}

// parseKFashionBoxes reads one garment's boxes: a list of boxes (the usual
// form, [{}] for none) or a lone box.
func parseKFashionBoxes(raw json.RawMessage) []kfBoxJSON {
	var list []kfBoxJSON
	if json.Unmarshal(raw, &list) == nil {
		return list
	}
	var one kfBoxJSON
	if json.Unmarshal(raw, &one) == nil {
		return []kfBoxJSON{one}
	}
	return nil
}

// jsonScalar returns a JSON string's value or a number's text (integral
// floats without their fraction: 1234.0 → "1234"); "" for anything else.
func jsonScalar(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return strings.TrimSpace(s)
	}
	var n json.Number
	if json.Unmarshal(raw, &n) != nil {
		return ""
	}
	if f, err := n.Float64(); err == nil && f == math.Trunc(f) && math.Abs(f) < 1e15 {
		return strconv.FormatInt(int64(f), 10)
	}
	return n.String()
}

// kfCandidate is a label–image pair of a requested style.
type kfCandidate struct {
	label    *kfLabel
	image    *kfEntry
	id       string // the image's file name stem: sort key, manifest id, output name
	subStyle string // English name when known, else as labelled
}

// kfPicked is an imported image.
type kfPicked struct {
	cand   *kfCandidate
	name   string // output file name
	method string // "link", "copy" or "write"
	crop   image.Rectangle
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

// readLabels parses every label file, in parallel.
func (im *kfImporter) readLabels() error {
	entries := im.src.labels
	im.labels = make([]*kfLabel, len(entries))
	var mu sync.Mutex
	done := 0
	return parallelFor(im.o.Workers, len(entries), func(i int) error {
		e := entries[i]
		data, err := e.readAll(kfashionMaxLabelBytes)
		var l *kfLabel
		if err == nil {
			l, err = parseKFashionLabel(data)
		}
		if err != nil {
			l = &kfLabel{err: err}
		} else if st, ok := LookupKFashionStyle(l.style); !ok || !slices.Contains(im.settings.Styles, st.English) {
			l.boxes = nil // only the imported styles are cropped: keep memory low on the full download
		}
		l.entry = e
		im.labels[i] = l
		mu.Lock()
		done++
		n := done
		mu.Unlock()
		im.progress(KFashionStageLabels, n, len(entries))
		return nil
	})
}

// pair matches labels with images, counts every file that cannot be used,
// and fills im.cands with the pairs of the requested styles, in pick order.
func (im *kfImporter) pair() {
	imageByID := map[string]int{}
	for i, e := range im.src.images {
		if first, dup := imageByID[e.stem]; dup {
			im.skips.add(KFashionSkipDuplicateID, fmt.Sprintf("%s (same id as %s)", e.Path, im.src.images[first].Path))
			continue
		}
		imageByID[e.stem] = i
	}
	claimed := make([]bool, len(im.src.images))
	paired := make([]int, len(im.labels))
	labelByID := map[string]*kfLabel{}
	var valid []int
	// Pass 1: by file name. An unreadable or style-less label still claims
	// its image, so that the pair is reported once, under the label's
	// reason.
	for i, l := range im.labels {
		paired[i] = -1
		if first, dup := labelByID[l.entry.stem]; dup {
			im.skips.add(KFashionSkipDuplicateID, fmt.Sprintf("%s (same id as %s)", l.entry.Path, first.entry.Path))
			paired[i] = -2
			continue
		}
		labelByID[l.entry.stem] = l
		if j, ok := imageByID[l.entry.stem]; ok && !claimed[j] {
			claimed[j], paired[i] = true, j
		}
		valid = append(valid, i)
	}
	// Pass 2: labels whose file name matched no image try the image file
	// name and the id written inside them.
	for _, i := range valid {
		l := im.labels[i]
		if paired[i] >= 0 || l.err != nil {
			continue
		}
		for _, key := range []string{l.fileStem, l.id} {
			if j, ok := imageByID[key]; ok && key != "" && !claimed[j] {
				claimed[j], paired[i] = true, j
				break
			}
		}
	}

	want := map[string]int{}
	for c, s := range im.styles {
		want[s.English] = c
	}
	im.cands = make([][]*kfCandidate, len(im.styles))
	for _, i := range valid {
		l := im.labels[i]
		switch {
		case l.err != nil:
			im.skips.add(KFashionSkipUnreadableJSON, fmt.Sprintf("%s: %v", l.entry.Path, l.err))
			continue
		case l.style == "":
			im.skips.add(KFashionSkipNoStyle, l.entry.Path)
			continue
		}
		st, ok := LookupKFashionStyle(l.style)
		switch {
		case !ok:
			im.skips.add(KFashionSkipUnknownStyle, fmt.Sprintf("%s (스타일 %q)", l.entry.Path, l.style))
		case paired[i] < 0:
			im.skips.add(KFashionSkipLabelWithoutImage, l.entry.Path)
		default:
			c, asked := want[st.English]
			if !asked {
				im.sum.OtherStyles++
				continue
			}
			img := im.src.images[paired[i]]
			sub := l.subStyle
			if s, ok := LookupKFashionStyle(sub); ok {
				sub = s.English
			}
			im.cands[c] = append(im.cands[c], &kfCandidate{label: l, image: img, id: img.stem, subStyle: sub})
		}
	}
	for j, e := range im.src.images {
		if first, ok := imageByID[e.stem]; ok && first == j && !claimed[j] {
			im.skips.add(KFashionSkipImageWithoutLabel, e.Path)
		}
	}

	im.sum.Classes = make([]KFashionClass, len(im.styles))
	for c, s := range im.styles {
		im.sum.Classes[c] = KFashionClass{Style: s.English, Korean: s.Korean, Found: len(im.cands[c])}
		shuffleKFashion(im.cands[c], im.settings.Seed, s.English)
	}
}

// shuffleKFashion puts a style's pairs in pick order: sorted by id, then
// shuffled by a generator seeded from seed and the style alone.
func shuffleKFashion(cands []*kfCandidate, seed int64, style string) {
	sort.SliceStable(cands, func(i, j int) bool {
		if cands[i].id != cands[j].id {
			return lessID(cands[i].id, cands[j].id)
		}
		return cands[i].label.entry.Path < cands[j].label.entry.Path
	})
	h := fnv.New64a()
	h.Write([]byte(style))
	rng := rand.New(rand.NewPCG(splitmix64(uint64(seed)), splitmix64(h.Sum64())))
	rng.Shuffle(len(cands), func(i, j int) { cands[i], cands[j] = cands[j], cands[i] })
}

// lessID orders ids numerically when both are decimal numbers (so 99 comes
// before 100), numbers before other ids, and the rest as strings.
func lessID(a, b string) bool {
	an, bn := isDecimal(a), isDecimal(b)
	switch {
	case an && bn:
		ta, tb := strings.TrimLeft(a, "0"), strings.TrimLeft(b, "0")
		if len(ta) != len(tb) {
			return len(ta) < len(tb)
		}
		if ta != tb {
			return ta < tb
		}
		return a < b
	case an != bn:
		return an
	}
	return a < b
}

func isDecimal(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// checkFound fails when a requested style has no image at all: the folder
// could not be trained on, and the likely cause is a wrong --src.
func (im *kfImporter) checkFound() error {
	var missing []string
	for c, s := range im.styles {
		if len(im.cands[c]) == 0 {
			missing = append(missing, s.English+" ("+s.Korean+")")
		}
	}
	if len(missing) == 0 {
		return nil
	}
	counts := map[string]int{}
	for _, l := range im.labels {
		if st, ok := LookupKFashionStyle(l.style); ok && l.err == nil {
			counts[st.English]++
		}
	}
	var found []string
	for _, s := range kfashionStyles {
		if n := counts[s.English]; n > 0 {
			found = append(found, fmt.Sprintf("%s %d", s.English, n))
		}
	}
	have := "no labels with a known style"
	if len(found) > 0 {
		have = "labels by style: " + strings.Join(found, ", ")
	}
	return fmt.Errorf("augment: %s: no images of %s (%s; %d label and %d image files)",
		im.settings.Src, strings.Join(missing, ", "), have, len(im.src.labels), len(im.src.images))
}

// importAll picks and writes every style's images under tmp and returns
// the manifest rows.
func (im *kfImporter) importAll(tmp string) ([][]string, error) {
	total := 0
	for c := range im.styles {
		total += min(len(im.cands[c]), im.settings.TrainPerClass+im.settings.ValPerClass)
	}
	im.progress(KFashionStageImages, 0, total)
	var rows [][]string
	for c, s := range im.styles {
		for _, split := range []string{"Train", "Validation"} {
			if err := os.MkdirAll(filepath.Join(tmp, split, s.English), 0o755); err != nil {
				return nil, err
			}
		}
		picked, err := im.pickStyle(c, filepath.Join(tmp, "Train", s.English), total)
		if err != nil {
			return nil, err
		}
		if len(picked) == 0 {
			return nil, fmt.Errorf("augment: no usable image of %s (%s): all %d found were skipped (see the examples of %s and %s)",
				s.English, s.Korean, len(im.cands[c]), KFashionSkipUnreadableImage, KFashionSkipNoGarmentBox)
		}
		nTrain, nVal := im.splitCounts(c, len(picked))
		cl := &im.sum.Classes[c]
		cl.Train, cl.Validation = nTrain, nVal
		for i, p := range picked {
			split := "Train"
			if i >= nTrain {
				split = "Validation"
				if err := os.Rename(filepath.Join(tmp, "Train", s.English, p.name), filepath.Join(tmp, split, s.English, p.name)); err != nil {
					return nil, err
				}
			}
			switch p.method {
			case "link":
				im.sum.Linked++
			case "copy":
				im.sum.Copied++
			default:
				im.sum.Written++
			}
			rows = append(rows, im.manifestRow(s, split, p))
		}
	}
	// The total above counted images that were then skipped: end at 100%.
	im.progress(KFashionStageImages, im.imported, im.imported)
	sortManifest(rows, im.settings.Styles)
	return rows, nil
}

// splitCounts divides a style's n picked images between Train and
// Validation: as asked when there are enough, else in the asked proportion,
// with a warning.
func (im *kfImporter) splitCounts(c, n int) (train, val int) {
	wantT, wantV := im.settings.TrainPerClass, im.settings.ValPerClass
	if n >= wantT+wantV {
		return wantT, wantV
	}
	val = int(math.Round(float64(n) * float64(wantV) / float64(wantT+wantV)))
	if val == n && n > 0 {
		val = n - 1 // Train is never left empty
	}
	train = n - val
	s := im.styles[c]
	im.sum.Warnings = append(im.sum.Warnings, fmt.Sprintf(
		"%s (%s): only %d usable images of the %d requested (%d train + %d validation): took %d train + %d validation",
		s.English, s.Korean, n, wantT+wantV, wantT, wantV, train, val))
	return train, val
}

// pickStyle takes style c's pairs in pick order, checking and writing each
// into dir, until TrainPerClass + ValPerClass are imported or the pairs run
// out. Images are processed in parallel batches of the number still
// missing, so that no work is wasted and the result does not depend on the
// number of workers.
func (im *kfImporter) pickStyle(c int, dir string, total int) ([]kfPicked, error) {
	cands := im.cands[c]
	need := im.settings.TrainPerClass + im.settings.ValPerClass
	var picked []kfPicked
	pos := 0
	for len(picked) < need && pos < len(cands) {
		batch := cands[pos:min(len(cands), pos+need-len(picked))]
		pos += len(batch)
		results := make([]kfResult, len(batch))
		err := parallelFor(im.o.Workers, len(batch), func(i int) error {
			results[i] = im.importOne(batch[i], dir)
			if results[i].skip == "" && results[i].err == nil {
				im.progressMu.Lock()
				im.imported++
				n := im.imported
				im.progressMu.Unlock()
				im.progress(KFashionStageImages, n, total)
			}
			return results[i].err
		})
		if err != nil {
			return nil, err
		}
		for _, r := range results {
			if r.skip != "" {
				im.skips.add(r.skip, r.detail)
				continue
			}
			picked = append(picked, r.picked)
		}
	}
	im.sum.NotPicked += len(cands) - pos
	return picked, nil
}

// kfResult is the outcome of importing one pair: picked, skipped for a
// reason, or a fatal error (the output cannot be written).
type kfResult struct {
	picked kfPicked
	skip   string
	detail string
	err    error
}

// importOne checks a pair's image and writes it into dir.
func (im *kfImporter) importOne(c *kfCandidate, dir string) kfResult {
	e := c.image
	unreadable := func(err error) kfResult {
		return kfResult{skip: KFashionSkipUnreadableImage, detail: fmt.Sprintf("%s: %v", e.Path, err)}
	}
	if im.settings.Crop == KFashionCropOutfit {
		data, err := e.readAll(kfashionMaxImageBytes)
		if err != nil {
			return unreadable(err)
		}
		img, err := DecodeOptions{}.decode(bytes.NewReader(data))
		if err != nil {
			return unreadable(err)
		}
		rect, ok := outfitRect(c.label, img.Bounds().Dx(), img.Bounds().Dy())
		if !ok {
			return kfResult{skip: KFashionSkipNoGarmentBox, detail: c.label.entry.Path}
		}
		p := kfPicked{cand: c, name: e.stem + ".jpg", method: "write", crop: rect}
		var buf bytes.Buffer
		if err := jpeg.Encode(&buf, img.SubImage(rect), &jpeg.Options{Quality: 95}); err != nil {
			return kfResult{err: fmt.Errorf("augment: %s: cannot encode the crop: %w", e.Path, err)}
		}
		if err := os.WriteFile(filepath.Join(dir, p.name), buf.Bytes(), 0o644); err != nil {
			return kfResult{err: err}
		}
		return kfResult{picked: p}
	}

	p := kfPicked{cand: c, name: e.stem + e.ext}
	dst := filepath.Join(dir, p.name)
	full := im.settings.Verify == KFashionVerifyFull
	if e.zf == nil && !full {
		if err := checkImageFile(e.file); err != nil {
			return unreadable(err)
		}
	} else {
		data, err := e.readAll(kfashionMaxImageBytes)
		if err != nil {
			return unreadable(err)
		}
		if err := checkImageData(data, full); err != nil {
			return unreadable(err)
		}
		if e.zf != nil {
			p.method = "write"
			if err := os.WriteFile(dst, data, 0o644); err != nil {
				return kfResult{err: err}
			}
			return kfResult{picked: p}
		}
	}
	p.method = "link"
	if os.Link(e.file, dst) != nil {
		// Another file system, or one without hard links.
		p.method = "copy"
		if err := copyFile(e.file, dst); err != nil {
			return kfResult{err: fmt.Errorf("augment: cannot copy %s to %s: %w", e.Path, dst, err)}
		}
	}
	return kfResult{picked: p}
}

// outfitRect is the union of the label's garment boxes, scaled from the
// label's image size to the decoded one when they differ, grown by
// KFashionCropMargin on each side and clamped to the image.
func outfitRect(l *kfLabel, w, h int) (image.Rectangle, bool) {
	if len(l.boxes) == 0 {
		return image.Rectangle{}, false
	}
	sx, sy := 1.0, 1.0
	if l.width > 0 && l.height > 0 {
		sx, sy = float64(w)/l.width, float64(h)/l.height
	}
	x0, y0 := math.Inf(1), math.Inf(1)
	x1, y1 := math.Inf(-1), math.Inf(-1)
	for _, b := range l.boxes {
		x0, y0 = math.Min(x0, b.X*sx), math.Min(y0, b.Y*sy)
		x1, y1 = math.Max(x1, (b.X+b.W)*sx), math.Max(y1, (b.Y+b.H)*sy)
	}
	mx, my := KFashionCropMargin*(x1-x0), KFashionCropMargin*(y1-y0)
	r := image.Rect(int(math.Floor(x0-mx)), int(math.Floor(y0-my)), int(math.Ceil(x1+mx)), int(math.Ceil(y1+my)))
	r = r.Intersect(image.Rect(0, 0, w, h))
	return r, !r.Empty()
}

// checkImageFile checks the header of the image at path: a known format,
// a non-empty size within DefaultMaxPixels.
func checkImageFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return unwrapPathError(err)
	}
	defer f.Close()
	br := bufio.NewReader(f)
	head, _ := br.Peek(16)
	if len(head) == 0 {
		return errors.New("empty file")
	}
	cfg, format, err := image.DecodeConfig(br)
	if err != nil {
		return describeDecodeError(err, sniffFormat(head))
	}
	return checkImageConfig(cfg, format)
}

// checkImageData checks an encoded image's header and, with full, decodes
// its pixels (and drops them).
func checkImageData(data []byte, full bool) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("decoder failed: %v", p)
		}
	}()
	if len(data) == 0 {
		return errors.New("empty file")
	}
	cfg, format, err := image.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		return describeDecodeError(err, sniffFormat(data))
	}
	if err := checkImageConfig(cfg, format); err != nil || !full {
		return err
	}
	if _, _, err := image.Decode(bytes.NewReader(data)); err != nil {
		return describeDecodeError(err, formatName(format))
	}
	return nil
}

func checkImageConfig(cfg image.Config, format string) error {
	if cfg.Width <= 0 || cfg.Height <= 0 {
		return fmt.Errorf("empty %s image (%dx%d)", formatName(format), cfg.Width, cfg.Height)
	}
	if px := int64(cfg.Width) * int64(cfg.Height); px > DefaultMaxPixels {
		return fmt.Errorf("%w: %s header says %dx%d = %d pixels, more than the limit of %d",
			ErrTooLarge, formatName(format), cfg.Width, cfg.Height, px, int64(DefaultMaxPixels))
	}
	return nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// kfashionManifestHeader are the columns of manifest.csv.
var kfashionManifestHeader = []string{"id", "style", "sub_style", "split", "file", "image_source", "label_source", "crop"}

func (im *kfImporter) manifestRow(s KFashionStyle, split string, p kfPicked) []string {
	crop := ""
	if !p.crop.Empty() {
		crop = fmt.Sprintf("%d %d %d %d", p.crop.Min.X, p.crop.Min.Y, p.crop.Max.X, p.crop.Max.Y)
	}
	return []string{p.cand.id, s.English, p.cand.subStyle, split, path.Join(split, s.English, p.name),
		p.cand.image.Path, p.cand.label.entry.Path, crop}
}

// sortManifest orders rows by split (Train first), style (in the order
// asked for), then id.
func sortManifest(rows [][]string, styles []string) {
	rank := map[string]int{}
	for i, s := range styles {
		rank[s] = i
	}
	sort.SliceStable(rows, func(i, j int) bool {
		a, b := rows[i], rows[j]
		if a[3] != b[3] {
			return a[3] == "Train"
		}
		if a[1] != b[1] {
			return rank[a[1]] < rank[b[1]]
		}
		if a[0] != b[0] {
			return lessID(a[0], b[0])
		}
		return a[4] < b[4]
	})
}

func writeKFashionManifest(p string, rows [][]string) error {
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	w.Write(kfashionManifestHeader)
	w.WriteAll(rows) // flushes; writing to memory cannot fail
	if err := w.Error(); err != nil {
		return err
	}
	return writeFileAtomic(p, buf.Bytes())
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

// writeFileAtomic writes data to a temporary file next to path and renames
// it into place, so that readers see the old file or the new one, never a
// part. (graphs.WriteFileAtomic does the same, but this package stays free
// of the TensorFlow-linked packages.)
func writeFileAtomic(p string, data []byte) error {
	dir := filepath.Dir(p)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(p)+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // fails harmlessly after the rename
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), p)
}
