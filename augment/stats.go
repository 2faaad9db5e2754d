package augment

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"image"
	"os"
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
	// Unreadable lists the files whose header cannot be decoded.
	Unreadable []UnreadableFile `json:"unreadable"`
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

// UnreadableFile is a file that cannot be read or whose image header does
// not decode.
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
// decodes the image header only (image.DecodeConfig), never the pixels, so
// an image whose header is fine but whose pixel data is damaged is not
// reported as unreadable.
func Stats(ds *Dataset) (*DatasetStats, error) {
	st := &DatasetStats{Root: ds.Root, Layout: ds.Layout, Classes: ds.Classes}
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
				inspect(&files[i])
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

func inspect(f *fileInfo) {
	data, err := os.ReadFile(f.path)
	if err != nil {
		f.err = unwrapPathError(err).Error()
		return
	}
	sum := sha256.Sum256(data)
	f.hash = hex.EncodeToString(sum[:])
	cfg, _, err := image.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		if err == image.ErrFormat {
			f.err = ErrNotImage.Error()
		} else {
			f.err = err.Error()
		}
		return
	}
	f.longer = cfg.Width
	if cfg.Height > f.longer {
		f.longer = cfg.Height
	}
}
