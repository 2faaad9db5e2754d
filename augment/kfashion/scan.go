// This file holds the listing of the K-Fashion source: walking folders and
// zip archives (with CP949 member names), and pairing labels with photos.

package kfashion

import (
	"archive/zip"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/encoding/korean"
	"golang.org/x/text/unicode/norm"

	"github.com/kfash-tf/kfash-tf/augment"
)

// entry is one file of the source: a plain file or a zip member.
type entry struct {
	// Path names the file in messages and the manifest: its path, or
	// ARCHIVE!MEMBER for a zip member.
	Path string
	file string // the plain file on disk (symbolic links resolved)
	// outside is set for a plain file reached through a symbolic link whose
	// target lies outside the source folder: it is copied, never hard-linked, so that
	// the output shares no inode with a file the import was not asked to
	// read (editing one would change the other).
	outside bool
	zf      *zip.File // the zip member
	stem    string    // base name without extension (NFC): the id
	ext     string    // extension, lower case
}

// readAll reads the whole file, refusing more than limit bytes.
func (e *entry) readAll(limit int64) ([]byte, error) {
	var r io.ReadCloser
	var err error
	if e.zf != nil {
		if e.zf.UncompressedSize64 > uint64(limit) {
			return nil, fmt.Errorf("%d bytes, more than the limit of %d", e.zf.UncompressedSize64, limit)
		}
		r, err = e.zf.Open()
	} else {
		r, err = augment.OpenRegularFile(e.file) // a pipe put in its place must not hang the import
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

// source is the listing of Options.Src.
type source struct {
	labels, images []*entry
	archives       []*zip.ReadCloser
	warnings       []string
	onFile         func(n int)
}

func (s *source) close() {
	for _, a := range s.archives {
		a.Close()
	}
}

// scanSource lists the label and image files of src: a folder
// (walked recursively, skipping hidden entries, __MACOSX and the folder
// skip, which is the output) or a single zip archive. Zip archives are
// listed, not unpacked. Entries are sorted so that plain files come before
// zip members, then by path: the order duplicates are resolved in.
func scanSource(src, skip string, onFile func(n int)) (*source, error) {
	info, err := os.Stat(src)
	if err != nil {
		return nil, fmt.Errorf("kfashion: %s: cannot read the K-Fashion source: %w", src, unwrapPathError(err))
	}
	s := &source{onFile: onFile}
	if !info.IsDir() {
		if !strings.EqualFold(filepath.Ext(src), ".zip") {
			return nil, fmt.Errorf("kfashion: %s: the K-Fashion source must be a folder or a .zip archive", src)
		}
		if err := s.addZip(src); err != nil {
			s.close()
			return nil, err
		}
	} else if err := s.walk(src, skip); err != nil {
		s.close()
		return nil, err
	}
	for _, list := range [][]*entry{s.labels, s.images} {
		sort.SliceStable(list, func(i, j int) bool {
			if (list[i].zf == nil) != (list[j].zf == nil) {
				return list[i].zf == nil
			}
			return list[i].Path < list[j].Path
		})
	}
	return s, nil
}

func (s *source) walk(root, skip string) error {
	// Symbolic links are judged by where they really lead: root itself
	// may be (or sit under) a link.
	realRoot, err := filepath.EvalSymlinks(root)
	if err != nil {
		return fmt.Errorf("kfashion: %s: cannot read: %w", root, unwrapPathError(err))
	}
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("kfashion: %s: cannot read: %w", p, unwrapPathError(err))
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
		file, outside := p, false
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
			file, outside = target, !isWithin(realRoot, target)
		} else if !d.Type().IsRegular() {
			return nil
		}
		if strings.EqualFold(filepath.Ext(p), ".zip") {
			return s.addZip(p)
		}
		s.add(&entry{Path: p, file: file, outside: outside}, d.Name())
		return nil
	})
}

// isHidden reports whether a file or folder is hidden, as package augment
// judges it when it lists a dataset: its name starts with a dot.
func isHidden(name string) bool { return strings.HasPrefix(name, ".") }

// unwrapPathError drops the *fs.PathError wrapper, whose message repeats
// the path that the caller already names.
func unwrapPathError(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// isWithin reports whether path is root or lies under it; both are clean
// absolute paths with symbolic links resolved.
func isWithin(root, path string) bool {
	rel, err := filepath.Rel(root, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) && !filepath.IsAbs(rel)
}

// addZip lists the members of the archive at p.
func (s *source) addZip(p string) error {
	zr, err := zip.OpenReader(p)
	if err != nil {
		return fmt.Errorf("kfashion: %s: cannot read zip archive: %v (an incomplete download? download it again or move it out of the source folder)", p, err)
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
		s.add(&entry{Path: p + "!" + name, zf: f}, path.Base(name))
	}
	return nil
}

// add files e as a label or an image by the extension of its base name.
func (s *source) add(e *entry, base string) {
	base = norm.NFC.String(base)
	e.ext = strings.ToLower(path.Ext(base))
	e.stem = strings.TrimSuffix(base, path.Ext(base))
	switch {
	case e.ext == ".json":
		s.labels = append(s.labels, e)
	case augment.HasImageExtension(base):
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

// candidate is a label–image pair of a requested style.
type candidate struct {
	label    *labelFile
	image    *entry
	id       string // the image's file name stem: sort key, manifest id, output name
	subStyle string // English name when known, else as labelled
}

// pair matches labels with images, counts every file that cannot be used,
// and fills im.cands with the pairs of the requested styles, in pick order.
func (im *importer) pair() {
	imageByID := map[string]int{}
	for i, e := range im.src.images {
		if first, dup := imageByID[e.stem]; dup {
			im.skips.add(SkipDuplicateID, fmt.Sprintf("%s (same id as %s)", e.Path, im.src.images[first].Path))
			continue
		}
		imageByID[e.stem] = i
	}
	claimed := make([]bool, len(im.src.images))
	paired := make([]int, len(im.labels))
	labelByID := map[string]*labelFile{}
	var valid []int
	// Pass 1: by file name. An unreadable or style-less label still claims
	// its image, so that the pair is reported once, under the label's
	// reason.
	for i, l := range im.labels {
		paired[i] = -1
		if first, dup := labelByID[l.entry.stem]; dup {
			im.skips.add(SkipDuplicateID, fmt.Sprintf("%s (same id as %s)", l.entry.Path, first.entry.Path))
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
	im.cands = make([][]*candidate, len(im.styles))
	for _, i := range valid {
		l := im.labels[i]
		switch {
		case l.err != nil:
			im.skips.add(SkipUnreadableJSON, fmt.Sprintf("%s: %v", l.entry.Path, l.err))
			continue
		case l.style == "":
			im.skips.add(SkipNoStyle, l.entry.Path)
			continue
		}
		st, ok := LookupStyle(l.style)
		switch {
		case !ok:
			im.skips.add(SkipUnknownStyle, fmt.Sprintf("%s (스타일 %q)", l.entry.Path, l.style))
		case paired[i] < 0:
			im.skips.add(SkipLabelWithoutImage, l.entry.Path)
		default:
			c, asked := want[st.English]
			if !asked {
				im.sum.OtherStyles++
				continue
			}
			img := im.src.images[paired[i]]
			sub := l.subStyle
			if s, ok := LookupStyle(sub); ok {
				sub = s.English
			}
			im.cands[c] = append(im.cands[c], &candidate{label: l, image: img, id: img.stem, subStyle: sub})
		}
	}
	for j, e := range im.src.images {
		if first, ok := imageByID[e.stem]; ok && first == j && !claimed[j] {
			im.skips.add(SkipImageWithoutLabel, e.Path)
		}
	}

	im.sum.Classes = make([]Class, len(im.styles))
	for c, s := range im.styles {
		im.sum.Classes[c] = Class{Style: s.English, Korean: s.Korean, Found: len(im.cands[c])}
		shuffleCandidates(im.cands[c], im.settings.Seed, s.English)
	}
}

// checkFound fails when a requested style has no image at all: the folder
// could not be trained on, and the likely cause is a wrong source folder.
func (im *importer) checkFound() error {
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
		if st, ok := LookupStyle(l.style); ok && l.err == nil {
			counts[st.English]++
		}
	}
	var found []string
	for _, s := range styleTable {
		if n := counts[s.English]; n > 0 {
			found = append(found, fmt.Sprintf("%s %d", s.English, n))
		}
	}
	have := "no labels with a known style"
	if len(found) > 0 {
		have = "labels by style: " + strings.Join(found, ", ")
	}
	return fmt.Errorf("kfashion: %s: no images of %s (%s; %d label and %d image files)",
		im.settings.Src, strings.Join(missing, ", "), have, len(im.src.labels), len(im.src.images))
}
