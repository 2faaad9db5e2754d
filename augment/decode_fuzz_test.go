package augment

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// fuzzCorpusDir holds the seeds of FuzzDecodeBytes: tiny images of every
// supported format, the same cut short, and headers of decompression bombs.
const fuzzCorpusDir = "../testdata/fuzz/decode"

// fuzzMaxPixels is the pixel limit of the fuzz target: small, so that a
// decoder that allocated beyond what the header check allowed stands out.
const fuzzMaxPixels = 1 << 16

// fuzzMaxAlloc bounds the bytes one decode may allocate: a few copies of a
// fuzzMaxPixels RGBA image (decoder buffers, the decoded image, the RGB
// conversion) with room to spare, and far below what a bomb would claim.
const fuzzMaxAlloc = 64 << 20

// FuzzDecodeBytes feeds arbitrary bytes to DecodeBytes with a pixel limit:
// it must return an image within the limit or an error, never panic, and
// never allocate much more than the limit allows.
func FuzzDecodeBytes(f *testing.F) {
	entries, err := os.ReadDir(fuzzCorpusDir)
	if err != nil {
		f.Fatalf("seed corpus: %v", err)
	}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(fuzzCorpusDir, e.Name()))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	if len(entries) < 10 {
		f.Fatalf("seed corpus %s has %d files, want the tiny, truncated and bomb images", fuzzCorpusDir, len(entries))
	}
	opts := DecodeOptions{MaxPixels: fuzzMaxPixels}
	f.Fuzz(func(t *testing.T, data []byte) {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		img, err := opts.DecodeBytes(data)
		runtime.ReadMemStats(&after)
		if alloc := after.TotalAlloc - before.TotalAlloc; alloc > fuzzMaxAlloc+uint64(8*len(data)) {
			t.Errorf("decoding %d bytes allocated %d bytes (limit %d pixels)", len(data), alloc, fuzzMaxPixels)
		}
		if err != nil {
			if img != nil {
				t.Errorf("an image and an error (%v)", err)
			}
			return
		}
		b := img.Bounds()
		if b.Min.X != 0 || b.Min.Y != 0 || b.Empty() || int64(b.Dx())*int64(b.Dy()) > fuzzMaxPixels {
			t.Errorf("decoded bounds %v: want a non-empty image at the origin of at most %d pixels", b, fuzzMaxPixels)
		}
	})
}
