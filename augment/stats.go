package augment

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"runtime"
	"sort"
	"sync"
)

// DatasetStats describes a dataset folder: images per class and split, image
// sizes, duplicate files and unreadable files. Stats builds it.
type DatasetStats struct {
	Root    string       `json:"root"`
	Layout  string       `json:"layout"`
	Classes []string     `json:"classes"`
	Splits  []SplitStats `json:"splits"`
	// Sizes is a histogram of the longer side of the readable images.
	Sizes []SizeBucket `json:"sizes"`
	// CrossSplit lists the pairs of identical files (same SHA-256) that sit
	// in different splits: leakage between training and evaluation.
	CrossSplit []DuplicatePair `json:"cross_split_duplicates"`
	// WithinSplit lists the groups of identical files inside one split.
	WithinSplit []DuplicateGroup `json:"within_split_duplicates"`
	// Unreadable lists the files training would skip: not regular files
	// (named pipes, devices), unreadable, not an image, truncated or
	// otherwise corrupt, or with more pixels than the limit (decompression
	// bombs), sorted by path.
	Unreadable []UnreadableFile `json:"unreadable"`
	// MaxPixels is the pixel limit the images were checked against.
	MaxPixels int64 `json:"max_pixels"`
}

// StatsOptions configures Stats. The zero value checks images against
// DefaultMaxPixels, the limit training decodes with.
type StatsOptions struct {
	// MaxPixels reports images with more pixels (width × height, read from
	// the header before any pixel is decoded) as too large; 0 means
	// DefaultMaxPixels.
	MaxPixels int64
}

// SplitStats counts the images of one split, per class (indexed by label).
type SplitStats struct {
	Name   string `json:"name"`
	Counts []int  `json:"counts"`
	Total  int    `json:"total"`
}

// SizeBucket counts images whose longer side is in [Min, Max] pixels (Max
// is 0 for the open last bucket).
type SizeBucket struct {
	Label string `json:"label"`
	Min   int    `json:"min"`
	Max   int    `json:"max,omitempty"`
	Count int    `json:"count"`
}

// DuplicatePair is two identical files in different splits.
type DuplicatePair struct {
	SHA256 string `json:"sha256"`
	SplitA string `json:"split_a"`
	PathA  string `json:"path_a"`
	SplitB string `json:"split_b"`
	PathB  string `json:"path_b"`
}

// DuplicateGroup is two or more identical files in one split.
type DuplicateGroup struct {
	SHA256 string   `json:"sha256"`
	Split  string   `json:"split"`
	Paths  []string `json:"paths"`
}

// UnreadableFile is a file that training cannot use, and why.
type UnreadableFile struct {
	Path   string `json:"path"`
	Reason string `json:"reason"`
}

// sizeBuckets are the histogram's buckets of the longer image side.
var sizeBuckets = []SizeBucket{
	{Label: "<64", Min: 0, Max: 63},
	{Label: "64-127", Min: 64, Max: 127},
	{Label: "128-255", Min: 128, Max: 255},
	{Label: "256-511", Min: 256, Max: 511},
	{Label: "512-1023", Min: 512, Max: 1023},
	{Label: ">=1024", Min: 1024},
}

type fileInfo struct {
	split, path, hash string
	longer            int
	err               string
}

// Stats reads every file of ds once: it hashes the content (SHA-256) and
// decodes the image the way training does (the same decoders and pixel
// limit), so that a truncated or corrupt file and a decompression bomb are
// reported before a run skips them. The files Open left out (ds.Skipped)
// are reported as unreadable too.
func Stats(ds *Dataset, opts StatsOptions) (*DatasetStats, error) {
	if opts.MaxPixels <= 0 {
		opts.MaxPixels = DefaultMaxPixels
	}
	st := &DatasetStats{Root: ds.Root, Layout: ds.Layout, Classes: ds.Classes, MaxPixels: opts.MaxPixels}
	dec := DecodeOptions{MaxPixels: opts.MaxPixels}
	var files []fileInfo
	for _, split := range ds.SplitNames() {
		counts := ds.Counts(split)
		total := 0
		for _, n := range counts {
			total += n
		}
		st.Splits = append(st.Splits, SplitStats{Name: split, Counts: counts, Total: total})
		for _, s := range ds.Splits[split] {
			files = append(files, fileInfo{split: split, path: s.Path})
		}
	}

	jobs := make(chan int)
	var wg sync.WaitGroup
	for w := 0; w < runtime.NumCPU(); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				inspect(&files[i], dec)
			}
		}()
	}
	for i := range files {
		jobs <- i
	}
	close(jobs)
	wg.Wait()

	st.Sizes = append([]SizeBucket(nil), sizeBuckets...)
	byHash := map[string][]int{}
	var hashes []string
	for i, f := range files {
		if f.hash != "" {
			if _, seen := byHash[f.hash]; !seen {
				hashes = append(hashes, f.hash)
			}
			byHash[f.hash] = append(byHash[f.hash], i)
		}
		if f.err != "" {
			st.Unreadable = append(st.Unreadable, UnreadableFile{Path: f.path, Reason: f.err})
			continue
		}
		for b := len(st.Sizes) - 1; b >= 0; b-- {
			if f.longer >= st.Sizes[b].Min {
				st.Sizes[b].Count++
				break
			}
		}
	}
	for _, sk := range ds.Skipped {
		st.Unreadable = append(st.Unreadable, UnreadableFile{Path: sk.Path, Reason: sk.Reason})
	}
	sort.SliceStable(st.Unreadable, func(i, j int) bool { return st.Unreadable[i].Path < st.Unreadable[j].Path })
	sort.Strings(hashes)
	for _, h := range hashes {
		idx := byHash[h]
		if len(idx) < 2 {
			continue
		}
		perSplit := map[string][]string{}
		var order []string
		for _, i := range idx {
			s := files[i].split
			if _, ok := perSplit[s]; !ok {
				order = append(order, s)
			}
			perSplit[s] = append(perSplit[s], files[i].path)
		}
		for _, s := range order {
			if len(perSplit[s]) > 1 {
				st.WithinSplit = append(st.WithinSplit, DuplicateGroup{SHA256: h, Split: s, Paths: perSplit[s]})
			}
		}
		for a := 0; a < len(idx); a++ {
			for b := a + 1; b < len(idx); b++ {
				fa, fb := files[idx[a]], files[idx[b]]
				if fa.split != fb.split {
					st.CrossSplit = append(st.CrossSplit, DuplicatePair{SHA256: h,
						SplitA: fa.split, PathA: fa.path, SplitB: fb.split, PathB: fb.path})
				}
			}
		}
	}
	return st, nil
}

// inspect hashes and decodes one file. The pixels are decoded, not only the
// header: a JPEG cut short has a perfect header, and only decoding finds
// that its data ends early.
func inspect(f *fileInfo, dec DecodeOptions) {
	data, err := readRegular(f.path)
	if err != nil {
		f.err = err.Error()
		return
	}
	sum := sha256.Sum256(data)
	f.hash = hex.EncodeToString(sum[:])
	img, err := dec.decodeImage(bytes.NewReader(data))
	if err != nil {
		f.err = err.Error()
		return
	}
	b := img.Bounds()
	f.longer = max(b.Dx(), b.Dy())
}
