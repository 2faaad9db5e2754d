// This file holds the output side of the K-Fashion importer: the output
// folder's checks and final move, the per-style sampling and Train/Validation
// split, hard links, copies and outfit crops, and manifest.csv.

package kfashion

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
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
	"sort"
	"strings"

	"github.com/kfash-tf/kfash-tf/augment"
	"github.com/kfash-tf/kfash-tf/internal/atomicfile"
)

// outNames are the entries an import leaves in its output folder.
var outNames = map[string]bool{"Train": true, "Validation": true, ManifestFile: true, SummaryFile: true}

// checkOut reports whether out holds a previous import with the same
// settings (to be replaced), and refuses any other non-empty folder. It
// changes nothing on disk.
func checkOut(out string, want Settings) (replace bool, err error) {
	entries, err := os.ReadDir(out)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("kfashion: %s: cannot use as output folder: %w", out, unwrapPathError(err))
	}
	var found []string
	for _, e := range entries {
		if isLeftover(e.Name()) {
			continue // an interrupted import's leftovers, removed later
		}
		if !outNames[e.Name()] {
			return false, fmt.Errorf("kfashion: %s is not empty (it has %s) and is not a K-Fashion import: choose another output folder", out, e.Name())
		}
		found = append(found, e.Name())
	}
	if len(found) == 0 {
		return false, nil
	}
	summary := filepath.Join(out, SummaryFile)
	data, err := os.ReadFile(summary)
	if err != nil {
		return false, fmt.Errorf("kfashion: %s has %s but no readable %s (an interrupted import?): delete the folder or choose another output folder",
			out, strings.Join(found, ", "), SummaryFile)
	}
	var prev Summary
	if err := json.Unmarshal(data, &prev); err != nil || prev.Format != summaryFormat {
		return false, fmt.Errorf("kfashion: %s: not an import summary of this program: delete %s or choose another output folder", summary, out)
	}
	if d := want.diff(prev.Settings); len(d) > 0 {
		return false, &SettingsError{Out: out, Diffs: d}
	}
	return true, nil
}

// prepareOut creates out if needed and removes the .tmp-* folders
// of interrupted imports.
func prepareOut(out string) error {
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	entries, err := os.ReadDir(out)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if isLeftover(e.Name()) {
			if err := os.RemoveAll(filepath.Join(out, e.Name())); err != nil {
				return err
			}
		}
	}
	return nil
}

// isLeftover reports whether an entry of the output folder is a
// temporary of an interrupted import: its .tmp-* build folder or the
// temporary file of an atomic write.
func isLeftover(name string) bool {
	return strings.HasPrefix(name, ".tmp-") || strings.HasPrefix(name, ".") && strings.Contains(name, ".tmp-")
}

// moveSplits moves tmp/Train and tmp/Validation into out. A previous
// import is moved into tmp first (its summary removed before anything else,
// so that a crash midway never leaves a summary describing other folders)
// and deleted with tmp.
func moveSplits(out, tmp string, replace bool) error {
	if replace {
		for _, name := range []string{SummaryFile, ManifestFile} {
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

// pick is an imported image.
type pick struct {
	cand   *candidate
	name   string // output file name
	method string // "link", "copy" or "write"
	crop   image.Rectangle
}

// shuffleCandidates puts a style's pairs in pick order: sorted by id, then
// shuffled by a generator seeded from seed and the style alone.
func shuffleCandidates(cands []*candidate, seed int64, style string) {
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

// splitmix64 is the SplitMix64 finaliser, a bijective mix in which every
// input bit affects every output bit, so that neighbouring seeds give
// unrelated shuffles. It is the importer's own copy, not augment's: the
// picks of a seed are part of an import's settings, and must not change
// when the loader's random streams do.
func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
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

// importAll picks and writes every style's images under tmp and returns
// the manifest rows.
func (im *importer) importAll(tmp string) ([][]string, error) {
	total := 0
	for c := range im.styles {
		total += min(len(im.cands[c]), im.settings.TrainPerClass+im.settings.ValPerClass)
	}
	im.progress(StageImages, 0, total)
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
			return nil, fmt.Errorf("kfashion: no usable image of %s (%s): all %d found were skipped (see the examples of %s and %s)",
				s.English, s.Korean, len(im.cands[c]), SkipUnreadableImage, SkipNoGarmentBox)
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
	im.progress(StageImages, im.imported, im.imported)
	sortManifest(rows, im.settings.Styles)
	return rows, nil
}

// splitCounts divides a style's n picked images between Train and
// Validation: as asked when there are enough, else in the asked proportion,
// with a warning.
func (im *importer) splitCounts(c, n int) (train, val int) {
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
func (im *importer) pickStyle(c int, dir string, total int) ([]pick, error) {
	cands := im.cands[c]
	need := im.settings.TrainPerClass + im.settings.ValPerClass
	var picked []pick
	pos := 0
	for len(picked) < need && pos < len(cands) {
		batch := cands[pos:min(len(cands), pos+need-len(picked))]
		pos += len(batch)
		results := make([]result, len(batch))
		err := parallelFor(im.o.Workers, len(batch), func(i int) error {
			results[i] = im.importOne(batch[i], dir)
			if results[i].skip == "" && results[i].err == nil {
				im.progressMu.Lock()
				im.imported++
				n := im.imported
				im.progressMu.Unlock()
				im.progress(StageImages, n, total)
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

// result is the outcome of importing one pair: picked, skipped for a
// reason, or a fatal error (the output cannot be written).
type result struct {
	picked pick
	skip   string
	detail string
	err    error
}

// importOne checks a pair's image and writes it into dir.
func (im *importer) importOne(c *candidate, dir string) result {
	e := c.image
	unreadable := func(err error) result {
		return result{skip: SkipUnreadableImage, detail: fmt.Sprintf("%s: %v", e.Path, err)}
	}
	if im.settings.Crop == CropOutfit {
		data, err := e.readAll(maxImageBytes)
		if err != nil {
			return unreadable(err)
		}
		img, err := augment.DecodeBytes(data)
		if err != nil {
			return unreadable(err)
		}
		rect, ok := outfitRect(c.label, img.Bounds().Dx(), img.Bounds().Dy())
		if !ok {
			return result{skip: SkipNoGarmentBox, detail: c.label.entry.Path}
		}
		p := pick{cand: c, name: e.stem + ".jpg", method: "write", crop: rect}
		var buf bytes.Buffer
		if err := jpeg.Encode(&buf, img.SubImage(rect), &jpeg.Options{Quality: 95}); err != nil {
			return result{err: fmt.Errorf("kfashion: %s: cannot encode the crop: %w", e.Path, err)}
		}
		if err := os.WriteFile(filepath.Join(dir, p.name), buf.Bytes(), 0o644); err != nil {
			return result{err: err}
		}
		return result{picked: p}
	}

	p := pick{cand: c, name: e.stem + e.ext}
	dst := filepath.Join(dir, p.name)
	full := im.settings.Verify == VerifyFull
	if e.zf == nil && !full {
		if err := checkImageFile(e.file); err != nil {
			return unreadable(err)
		}
	} else {
		data, err := e.readAll(maxImageBytes)
		if err != nil {
			return unreadable(err)
		}
		if err := checkImageData(data, full); err != nil {
			return unreadable(err)
		}
		if e.zf != nil {
			p.method = "write"
			if err := os.WriteFile(dst, data, 0o644); err != nil {
				return result{err: err}
			}
			return result{picked: p}
		}
	}
	p.method = "link"
	if e.outside || os.Link(e.file, dst) != nil {
		// Outside the source (see entry.outside), another file system, or
		// one without hard links.
		p.method = "copy"
		if err := copyFile(e.file, dst); err != nil {
			return result{err: fmt.Errorf("kfashion: cannot copy %s to %s: %w", e.Path, dst, err)}
		}
	}
	return result{picked: p}
}

// outfitRect is the union of the label's garment boxes, scaled from the
// label's image size to the decoded one when they differ, grown by
// CropMargin on each side and clamped to the image.
func outfitRect(l *labelFile, w, h int) (image.Rectangle, bool) {
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
	mx, my := CropMargin*(x1-x0), CropMargin*(y1-y0)
	r := image.Rect(int(math.Floor(x0-mx)), int(math.Floor(y0-my)), int(math.Ceil(x1+mx)), int(math.Ceil(y1+my)))
	r = r.Intersect(image.Rect(0, 0, w, h))
	return r, !r.Empty()
}

// checkImageFile checks the header of the image at path (see
// augment.DecodeOptions.CheckHeader).
func checkImageFile(path string) error {
	f, err := augment.OpenRegularFile(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return augment.DecodeOptions{}.CheckHeader(f)
}

// checkImageData checks an encoded image's header and, with full, decodes
// its pixels (and drops them).
func checkImageData(data []byte, full bool) error {
	if full {
		return augment.DecodeOptions{}.Check(data)
	}
	return augment.DecodeOptions{}.CheckHeader(bytes.NewReader(data))
}

func copyFile(src, dst string) error {
	in, err := augment.OpenRegularFile(src)
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

// manifestHeader are the columns of manifest.csv.
var manifestHeader = []string{"id", "style", "sub_style", "split", "file", "image_source", "label_source", "crop"}

func (im *importer) manifestRow(s Style, split string, p pick) []string {
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

func writeManifest(p string, rows [][]string) error {
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	w.Write(manifestHeader)
	w.WriteAll(rows) // flushes; writing to memory cannot fail
	if err := w.Error(); err != nil {
		return err
	}
	return atomicfile.WriteFile(p, buf.Bytes())
}
