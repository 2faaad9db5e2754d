package augment

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// epochResult is everything an epoch produced, copied out of the batches.
type epochResult struct {
	images  [][]float32 // one per image
	labels  []int32
	paths   []string
	batches []int // N of each batch
}

// runEpoch runs one epoch to the end, releasing every batch.
func runEpoch(t *testing.T, l *Loader, epoch int) epochResult {
	t.Helper()
	var r epochResult
	sz := l.cfg.Size * l.cfg.Size * 3
	for b := range l.Epoch(context.Background(), epoch) {
		if len(b.Images) != b.N*sz || len(b.Labels) != b.N || len(b.Paths) != b.N {
			t.Fatalf("batch N=%d with %d values, %d labels, %d paths", b.N, len(b.Images), len(b.Labels), len(b.Paths))
		}
		for i := 0; i < b.N; i++ {
			r.images = append(r.images, append([]float32(nil), b.Images[i*sz:(i+1)*sz]...))
		}
		r.labels = append(r.labels, b.Labels...)
		r.paths = append(r.paths, b.Paths...)
		r.batches = append(r.batches, b.N)
		b.Release()
	}
	return r
}

func newTestLoader(t *testing.T, samples []Sample, cfg LoaderConfig) *Loader {
	t.Helper()
	l, err := NewLoader(samples, cfg)
	if err != nil {
		t.Fatalf("NewLoader: %v", err)
	}
	return l
}

func TestLoaderShapes(t *testing.T) {
	samples := makeImageDir(t, t.TempDir(), []string{"a", "b", "c"}, 7) // 21 images
	tests := []struct {
		name        string
		cfg         LoaderConfig
		wantLen     int
		wantBatches []int
	}{
		{"partial last batch", LoaderConfig{Size: 8, BatchSize: 8}, 21, []int{8, 8, 5}},
		{"drop last", LoaderConfig{Size: 8, BatchSize: 8, DropLast: true}, 21, []int{8, 8}},
		{"exact", LoaderConfig{Size: 8, BatchSize: 7, Shuffle: true}, 21, []int{7, 7, 7}},
		{"double", LoaderConfig{Size: 8, BatchSize: 10, Augment: ModeDouble}, 42, []int{10, 10, 10, 10, 2}},
		{"batch larger than epoch", LoaderConfig{Size: 8, BatchSize: 64}, 21, []int{21}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := newTestLoader(t, samples, tt.cfg)
			if l.Len() != tt.wantLen || l.Steps() != len(tt.wantBatches) {
				t.Errorf("Len, Steps = %d, %d; want %d, %d", l.Len(), l.Steps(), tt.wantLen, len(tt.wantBatches))
			}
			r := runEpoch(t, l, 0)
			if !reflect.DeepEqual(r.batches, tt.wantBatches) {
				t.Errorf("batch sizes = %v, want %v", r.batches, tt.wantBatches)
			}
		})
	}
}

// TestLoaderMatchesPreprocess checks that an unaugmented, unshuffled epoch
// yields exactly what PreprocessFile computes, with the right labels.
func TestLoaderMatchesPreprocess(t *testing.T) {
	samples := makeImageDir(t, t.TempDir(), []string{"a", "b"}, 3)
	l := newTestLoader(t, samples, LoaderConfig{Size: 10, BatchSize: 4, Workers: 3})
	r := runEpoch(t, l, 0)
	if len(r.images) != len(samples) {
		t.Fatalf("%d images, want %d", len(r.images), len(samples))
	}
	for i, s := range samples {
		want, err := PreprocessFile(s.Path, 10)
		if err != nil {
			t.Fatal(err)
		}
		if r.paths[i] != s.Path || r.labels[i] != int32(s.Label) || !reflect.DeepEqual(r.images[i], want) {
			t.Errorf("image %d: got %s label %d, want %s label %d (pixels equal: %v)",
				i, r.paths[i], r.labels[i], s.Path, s.Label, reflect.DeepEqual(r.images[i], want))
		}
	}
}

func TestLoaderDeterminism(t *testing.T) {
	samples := makeImageDir(t, t.TempDir(), []string{"a", "b", "c"}, 9)
	for _, mode := range []Mode{ModeOnline, ModeDouble} {
		t.Run(string(mode), func(t *testing.T) {
			base := LoaderConfig{Size: 12, BatchSize: 5, Shuffle: true, Augment: mode, Seed: 42}
			one, four := base, base
			one.Workers, four.Workers = 1, 4
			l1, l4 := newTestLoader(t, samples, one), newTestLoader(t, samples, four)
			for epoch := 0; epoch < 2; epoch++ {
				a, b := runEpoch(t, l1, epoch), runEpoch(t, l4, epoch)
				if !reflect.DeepEqual(a, b) {
					t.Fatalf("epoch %d: Workers=1 and Workers=4 gave different batches", epoch)
				}
			}

			other := four
			other.Seed = 43
			a, b := runEpoch(t, l4, 0), runEpoch(t, newTestLoader(t, samples, other), 0)
			if reflect.DeepEqual(a.paths, b.paths) {
				t.Error("seeds 42 and 43 gave the same order")
			}
			if e1 := runEpoch(t, l4, 1); reflect.DeepEqual(a.paths, e1.paths) {
				t.Error("epochs 0 and 1 gave the same order")
			}
		})
	}
}

func TestLoaderNoShuffleKeepsOrder(t *testing.T) {
	samples := makeImageDir(t, t.TempDir(), []string{"a", "b"}, 4)
	l := newTestLoader(t, samples, LoaderConfig{Size: 8, BatchSize: 3, Augment: ModeOnline, Workers: 2})
	for epoch := 0; epoch < 2; epoch++ {
		r := runEpoch(t, l, epoch)
		for i, s := range samples {
			if r.paths[i] != s.Path {
				t.Fatalf("epoch %d position %d = %s, want %s", epoch, i, r.paths[i], s.Path)
			}
		}
	}
}

// TestLoaderOnlineChangesEachEpoch checks that online augmentation draws
// afresh every epoch, and that some images are left unchanged.
func TestLoaderOnlineChangesEachEpoch(t *testing.T) {
	samples := makeImageDir(t, t.TempDir(), []string{"a", "b"}, 12)
	plain := runEpoch(t, newTestLoader(t, samples, LoaderConfig{Size: 12, BatchSize: 8}), 0)
	l := newTestLoader(t, samples, LoaderConfig{Size: 12, BatchSize: 8, Augment: ModeOnline, Seed: 1})
	e0, e1 := runEpoch(t, l, 0), runEpoch(t, l, 1)
	changed, same := 0, 0
	for i := range samples {
		if !reflect.DeepEqual(e0.images[i], e1.images[i]) {
			changed++
		}
		if reflect.DeepEqual(e0.images[i], plain.images[i]) {
			same++
		}
	}
	if changed == 0 {
		t.Error("online augmentation gave the same images in epochs 0 and 1")
	}
	if same == 0 || same == len(samples) {
		t.Errorf("%d of %d images unaugmented in epoch 0, want about a third", same, len(samples))
	}
}

func TestLoaderDouble(t *testing.T) {
	samples := makeImageDir(t, t.TempDir(), []string{"a", "b"}, 6)
	plain := runEpoch(t, newTestLoader(t, samples, LoaderConfig{Size: 12, BatchSize: 5}), 0)
	l := newTestLoader(t, samples, LoaderConfig{Size: 12, BatchSize: 5, Shuffle: true, Augment: ModeDouble, Seed: 9})
	if l.Len() != 2*len(samples) {
		t.Fatalf("Len = %d, want %d", l.Len(), 2*len(samples))
	}
	// copies[path] is the augmented copy of each image, per epoch.
	copies := make([]map[string][]float32, 2)
	var orders [2][]string
	for epoch := 0; epoch < 2; epoch++ {
		r := runEpoch(t, l, epoch)
		if len(r.images) != 2*len(samples) {
			t.Fatalf("epoch %d: %d images, want %d", epoch, len(r.images), 2*len(samples))
		}
		orders[epoch] = r.paths
		copies[epoch] = map[string][]float32{}
		seen := map[string]int{}
		for i, p := range r.paths {
			seen[p]++
			k := indexOfPath(samples, p)
			if reflect.DeepEqual(r.images[i], plain.images[k]) {
				continue // the original
			}
			if _, dup := copies[epoch][p]; dup {
				t.Fatalf("epoch %d: %s has two augmented copies", epoch, p)
			}
			copies[epoch][p] = r.images[i]
		}
		for _, s := range samples {
			if seen[s.Path] != 2 {
				t.Errorf("epoch %d: %s appears %d times, want 2", epoch, s.Path, seen[s.Path])
			}
		}
	}
	if len(copies[0]) != len(samples) {
		t.Fatalf("%d augmented copies, want %d", len(copies[0]), len(samples))
	}
	if !reflect.DeepEqual(copies[0], copies[1]) {
		t.Error("the augmented copies differ between epochs")
	}
	if reflect.DeepEqual(orders[0], orders[1]) {
		t.Error("the doubled epoch was not reshuffled")
	}
}

func indexOfPath(samples []Sample, path string) int {
	for i, s := range samples {
		if s.Path == path {
			return i
		}
	}
	return -1
}

// waitGoroutines waits until the number of goroutines is back to at most
// want, failing after a few seconds.
func waitGoroutines(t *testing.T, want int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > want {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines, want at most %d:\n%s", runtime.NumGoroutine(), want, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestLoaderCancel(t *testing.T) {
	samples := makeImageDir(t, t.TempDir(), []string{"a", "b"}, 20)
	l := newTestLoader(t, samples, LoaderConfig{Size: 16, BatchSize: 2, Workers: 4, Augment: ModeOnline, Prefetch: 1})

	tests := []struct {
		name      string
		readFirst int // batches read before cancelling
	}{{"before the first batch", 0}, {"after one batch", 1}, {"mid epoch", 7}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := runtime.NumGoroutine()
			ctx, cancel := context.WithCancel(context.Background())
			ch := l.Epoch(ctx, 3)
			for i := 0; i < tt.readFirst; i++ {
				b, ok := <-ch
				if !ok {
					t.Fatal("epoch ended early")
				}
				b.Release()
			}
			cancel()
			rest := 0
			for b := range ch { // must be closed soon, after a few prepared batches at most
				rest++
				b.Release()
			}
			if tt.readFirst+rest >= l.Steps() {
				t.Errorf("cancelled epoch delivered all %d batches", l.Steps())
			}
			waitGoroutines(t, before)
		})
	}

	t.Run("already cancelled", func(t *testing.T) {
		before := runtime.NumGoroutine()
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		n := 0
		for b := range l.Epoch(ctx, 0) {
			n++
			b.Release()
		}
		if n > l.cfg.Prefetch {
			t.Errorf("an epoch started with a cancelled context delivered %d batches", n)
		}
		waitGoroutines(t, before)
	})

	// The loader still works after cancelled epochs.
	before := runtime.NumGoroutine()
	if r := runEpoch(t, l, 0); len(r.images) != len(samples) {
		t.Errorf("after cancellations, an epoch gave %d images, want %d", len(r.images), len(samples))
	}
	waitGoroutines(t, before)
}

func TestLoaderReleaseReusesBuffers(t *testing.T) {
	samples := makeImageDir(t, t.TempDir(), []string{"a", "b"}, 15)
	l := newTestLoader(t, samples, LoaderConfig{Size: 8, BatchSize: 2, Workers: 2})
	seen := map[*float32]bool{}
	reused, total := 0, 0
	for epoch := 0; epoch < 3; epoch++ {
		for b := range l.Epoch(context.Background(), epoch) {
			p := &b.Images[:1][0]
			if seen[p] {
				reused++
			}
			seen[p] = true
			total++
			b.Release()
			b.Release() // a second Release must be harmless
			if b.Images != nil || b.N != 0 {
				t.Fatal("Release left the batch's slices in place")
			}
		}
	}
	allocated := int(l.pool.allocated.Load())
	if allocated > l.maxLiveBatches() {
		t.Errorf("%d batch buffers allocated for %d batches, want at most %d", allocated, total, l.maxLiveBatches())
	}
	if reused < total-allocated {
		t.Errorf("only %d of %d batches reused a buffer", reused, total)
	}
}

// TestLoaderBadFiles runs two epochs over a folder holding a truncated JPEG
// and a text file named .jpg: both are reported once, left out, and not
// read again (the truncated file is repaired between the epochs and must
// still be skipped).
func TestLoaderBadFiles(t *testing.T) {
	dir := t.TempDir()
	samples := makeImageDir(t, dir, []string{"a", "b"}, 5)
	jpg := encode(t, ".jpg", patternImage(30, 30, 0))
	truncated := filepath.Join(dir, "a", "truncated.jpg")
	text := filepath.Join(dir, "b", "text.jpg")
	writeFile(t, truncated, jpg[:len(jpg)/3])
	writeFile(t, text, []byte("not an image"))
	samples = append(samples, Sample{truncated, 0}, Sample{text, 1})

	var mu sync.Mutex
	var reported []string
	l := newTestLoader(t, samples, LoaderConfig{
		Size: 8, BatchSize: 4, Workers: 3, Augment: ModeDouble, Shuffle: true,
		OnSkip: func(r SkipReport) {
			mu.Lock()
			defer mu.Unlock()
			reported = append(reported, r.String())
		},
	})
	for epoch := 0; epoch < 2; epoch++ {
		r := runEpoch(t, l, epoch)
		if want := 2 * (len(samples) - 2); len(r.images) != want {
			t.Errorf("epoch %d: %d images, want %d", epoch, len(r.images), want)
		}
		for _, p := range r.paths {
			if p == truncated || p == text {
				t.Errorf("epoch %d delivered bad file %s", epoch, p)
			}
		}
		if epoch == 0 {
			writeFile(t, truncated, jpg) // repaired: must not be read again
		}
	}
	if len(reported) != 2 {
		t.Fatalf("OnSkip called %d times, want 2: %q", len(reported), reported)
	}
	skipped := l.Skipped()
	if len(skipped) != 2 || skipped[0].Path != truncated || skipped[1].Path != text {
		t.Fatalf("Skipped() = %v, want %s then %s", skipped, truncated, text)
	}
	for _, want := range []string{truncated + ": truncated JPEG", text + ": not a supported image"} {
		if !strings.Contains(strings.Join(reported, "\n"), want) {
			t.Errorf("reports %q do not contain %q", reported, want)
		}
	}
}

func TestLoaderAllSkippedBatchIsDropped(t *testing.T) {
	dir := t.TempDir()
	good := makeImageDir(t, dir, []string{"a"}, 2)
	var samples []Sample
	for i := 0; i < 3; i++ {
		p := filepath.Join(dir, fmt.Sprintf("bad%d.png", i))
		writeFile(t, p, []byte("junk"))
		samples = append(samples, Sample{Path: p})
	}
	samples = append(samples, good...)
	l := newTestLoader(t, samples, LoaderConfig{Size: 8, BatchSize: 2, Workers: 2})
	r := runEpoch(t, l, 0)
	// Batches: {bad0, bad1} dropped, {bad2, good0} -> 1, {good1} -> 1.
	if !reflect.DeepEqual(r.batches, []int{1, 1}) {
		t.Errorf("batch sizes = %v, want [1 1]", r.batches)
	}
}

func TestLoaderCache(t *testing.T) {
	dir := t.TempDir()
	samples := makeImageDir(t, dir, []string{"a", "b"}, 5)
	need := int64(len(samples) * 16 * 16 * 4)

	_, err := NewLoader(samples, LoaderConfig{Size: 16, BatchSize: 4, Cache: true, CacheBudgetBytes: need - 1})
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("needs %d bytes", need)) {
		t.Fatalf("NewLoader over budget: err = %v, want it to say it needs %d bytes", err, need)
	}

	cfg := LoaderConfig{Size: 16, BatchSize: 4, Augment: ModeOnline, Shuffle: true, Seed: 3, Workers: 2}
	want := runEpoch(t, newTestLoader(t, samples, cfg), 1)
	cfg.Cache, cfg.CacheBudgetBytes = true, need
	l := newTestLoader(t, samples, cfg)
	runEpoch(t, l, 0)
	// Every image is cached now: epoch 1 must not need the files.
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	got := runEpoch(t, l, 1)
	if !reflect.DeepEqual(got, want) {
		t.Error("a cached epoch differs from an uncached one")
	}
	if s := l.Skipped(); len(s) != 0 {
		t.Errorf("cached epoch read files: %v", s)
	}
}

func TestNewLoaderErrors(t *testing.T) {
	samples := []Sample{{Path: "x.jpg", Label: 0}, {Path: "y.jpg", Label: 1}}
	tests := []struct {
		name    string
		samples []Sample
		cfg     LoaderConfig
		wantErr string
	}{
		{"no size", samples, LoaderConfig{BatchSize: 1}, "Size must be positive"},
		{"no batch size", samples, LoaderConfig{Size: 8}, "BatchSize must be positive"},
		{"bad mode", samples, LoaderConfig{Size: 8, BatchSize: 1, Augment: "sometimes"}, `unknown augmentation mode "sometimes"`},
		{"negative workers", samples, LoaderConfig{Size: 8, BatchSize: 1, Workers: -1}, "Workers"},
		{"negative prefetch", samples, LoaderConfig{Size: 8, BatchSize: 1, Prefetch: -1}, "Prefetch"},
		{"cache without budget", samples, LoaderConfig{Size: 8, BatchSize: 1, Cache: true}, "CacheBudgetBytes"},
		{"no samples", nil, LoaderConfig{Size: 8, BatchSize: 1}, "no samples"},
		{"negative label", []Sample{{Path: "z.jpg", Label: -1}}, LoaderConfig{Size: 8, BatchSize: 1}, "z.jpg"},
		{"drop last leaves nothing", samples, LoaderConfig{Size: 8, BatchSize: 3, DropLast: true}, "gives no batch"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewLoader(tt.samples, tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("NewLoader error = %v, want %q", err, tt.wantErr)
			}
		})
	}
	l := newTestLoader(t, samples, LoaderConfig{Size: 8, BatchSize: 1})
	if c := l.Config(); c.Workers != runtime.NumCPU() || c.Prefetch != DefaultPrefetch || c.Augment != ModeNone {
		t.Errorf("defaults: Workers %d, Prefetch %d, Augment %q", c.Workers, c.Prefetch, c.Augment)
	}
	l = newTestLoader(t, samples, LoaderConfig{Size: 8, BatchSize: 1, Augment: "Double"})
	if l.Config().Augment != ModeDouble || l.Len() != 4 {
		t.Errorf("Augment \"Double\" read as %q (Len %d)", l.Config().Augment, l.Len())
	}
}
