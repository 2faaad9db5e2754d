package augment

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

// clothingSmall is the shared real-photo dataset (JPEG, mostly 400×533),
// relative to this package folder: main/augment -> ../../shared/data.
// It is not part of the repository, so tests using it skip when it is absent.
var clothingSmall = filepath.Join("..", "..", "shared", "data", "clothing-small")

// openClothing opens the shared dataset with the seed study's three
// classes, or skips.
func openClothing(tb testing.TB) *Dataset {
	tb.Helper()
	if _, err := os.Stat(clothingSmall); err != nil {
		tb.Skipf("real-data test skipped: %s not found (the shared clothing-small dataset lives beside the repository)", clothingSmall)
	}
	ds, err := Open(clothingSmall, OpenOptions{Classes: []string{"t-shirt", "pants", "shoes"}})
	if err != nil {
		tb.Fatalf("Open(%s): %v", clothingSmall, err)
	}
	return ds
}

func TestClothingSmallValidationEpoch(t *testing.T) {
	ds := openClothing(t)
	if err := ds.CheckTraining(); err != nil {
		t.Fatalf("CheckTraining: %v", err)
	}
	val, err := ds.Split("validation")
	if err != nil {
		t.Fatal(err)
	}
	counts := ds.Counts("validation")
	t.Logf("%s: layout %s, validation counts %v (t-shirt, pants, shoes)", clothingSmall, ds.Layout, counts)
	l, err := NewLoader(val, LoaderConfig{Size: 64, BatchSize: 32, Augment: ModeOnline, Shuffle: true, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	perClass := make([]int, len(ds.Classes))
	n := 0
	for b := range l.Epoch(context.Background(), 0) {
		for _, lab := range b.Labels {
			perClass[lab]++
		}
		n += b.N
		b.Release()
	}
	if n != len(val) || len(l.Skipped()) != 0 {
		t.Errorf("epoch gave %d of %d images; skipped %v", n, len(val), l.Skipped())
	}
	for c := range counts {
		if perClass[c] != counts[c] {
			t.Errorf("class %s: %d images in the epoch, %d in the folder", ds.Classes[c], perClass[c], counts[c])
		}
	}
}

// BenchmarkLoader measures the loader's throughput (decode + resize +
// online augmentation + float conversion, images/s) on the real JPEGs of
// the clothing-small validation split, all ten classes. The "cached" cases
// fill the cache with one epoch before timing, so they measure the later
// epochs of a run with LoaderConfig.Cache (augmentation and conversion only).
//
//	go test ./augment/ -run '^$' -bench BenchmarkLoader -benchtime 1000x
func BenchmarkLoader(b *testing.B) {
	if _, err := os.Stat(clothingSmall); err != nil {
		b.Skipf("benchmark skipped: %s not found", clothingSmall)
	}
	ds, err := Open(clothingSmall, OpenOptions{})
	if err != nil {
		b.Fatal(err)
	}
	val, err := ds.Split("validation")
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name    string
		size    int
		workers int
		cache   bool
	}{
		{"size=150/workers=1", 150, 1, false},
		{"size=150/workers=NumCPU", 150, runtime.NumCPU(), false},
		{"size=224/workers=1", 224, 1, false},
		{"size=224/workers=NumCPU", 224, runtime.NumCPU(), false},
		{"size=150/workers=NumCPU/cached", 150, runtime.NumCPU(), true},
		{"size=224/workers=NumCPU/cached", 224, runtime.NumCPU(), true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			l, err := NewLoader(val, LoaderConfig{
				Size: bc.size, BatchSize: 32, Shuffle: true, Augment: ModeOnline, Seed: 1, Workers: bc.workers,
				Cache: bc.cache, CacheBudgetBytes: 1 << 30,
			})
			if err != nil {
				b.Fatal(err)
			}
			if bc.cache {
				for batch := range l.Epoch(context.Background(), -1) {
					batch.Release()
				}
			}
			b.ResetTimer()
			start := time.Now()
			images := 0 // one benchmark iteration is one image
			for epoch := 0; images < b.N; epoch++ {
				ctx, cancel := context.WithCancel(context.Background())
				for batch := range l.Epoch(ctx, epoch) {
					images += batch.N
					batch.Release()
					if images >= b.N {
						cancel()
					}
				}
				cancel()
			}
			b.StopTimer()
			b.ReportMetric(float64(images)/time.Since(start).Seconds(), "images/s")
		})
	}
}
