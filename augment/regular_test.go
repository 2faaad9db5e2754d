//go:build unix

package augment

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kfash-tf/kfash-tf/augment/augmenttest"
)

// mkfifo makes a named pipe at path. Opening it for reading the ordinary
// way blocks until a writer appears, which no test provides: a read of it
// that is not guarded hangs, and withDeadline turns the hang into a failure.
func mkfifo(t *testing.T, path string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(path, 0o644); err != nil {
		t.Skipf("cannot make a named pipe: %v", err)
	}
}

// withDeadline runs f and fails the test if it has not returned within d
// (a read blocked on a pipe cannot be interrupted; the goroutine leaks,
// the test binary still ends).
func withDeadline(t *testing.T, d time.Duration, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("%s did not return within %s: blocked on a named pipe?", what, d)
	}
}

func TestOpenSkipsNamedPipes(t *testing.T) {
	root := t.TempDir()
	writeFile(t, filepath.Join(root, "Train", "cat", "a.png"), pngOf(t, 4, 4, 1))
	fifo := filepath.Join(root, "Train", "cat", "b.jpg")
	mkfifo(t, fifo)
	// A link to a pipe is judged by its target.
	linkedFifo := filepath.Join(root, "Train", "dog", "c.png")
	writeFile(t, filepath.Join(root, "Train", "dog", "d.png"), pngOf(t, 4, 4, 2))
	if err := os.Symlink(fifo, linkedFifo); err != nil {
		t.Fatal(err)
	}
	ds, err := Open(root, OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range ds.Splits[SplitTrain] {
		if s.Path == fifo || s.Path == linkedFifo {
			t.Errorf("named pipe %s listed as a sample", s.Path)
		}
	}
	if got := ds.Counts(SplitTrain); got[0] != 1 || got[1] != 1 {
		t.Errorf("counts %v, want [1 1]", got)
	}
	if len(ds.Skipped) != 2 || ds.Skipped[0].Path != fifo || ds.Skipped[1].Path != linkedFifo {
		t.Fatalf("skipped %+v, want %s and %s", ds.Skipped, fifo, linkedFifo)
	}
	for _, sk := range ds.Skipped {
		if !strings.Contains(sk.Reason, "named pipe") {
			t.Errorf("reason %q does not say it is a named pipe", sk.Reason)
		}
	}
}

// A file that was an image when the folder was listed and is a named pipe
// by the time it is read must fail at once, not block the reader.
func TestDecodeFileNamedPipeFailsAtOnce(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "x.jpg")
	mkfifo(t, fifo)
	var err error
	withDeadline(t, 5*time.Second, "DecodeFile(named pipe)", func() { _, err = DecodeFile(fifo) })
	if !errors.Is(err, ErrNotRegular) || !strings.Contains(err.Error(), fifo) || !strings.Contains(err.Error(), "named pipe") {
		t.Errorf("DecodeFile(named pipe) error = %v, want ErrNotRegular naming the path and the pipe", err)
	}
	withDeadline(t, 5*time.Second, "ReadRegularFile(named pipe)", func() { _, err = ReadRegularFile(fifo) })
	if !errors.Is(err, ErrNotRegular) {
		t.Errorf("ReadRegularFile(named pipe) error = %v, want ErrNotRegular", err)
	}
	if _, err := ReadRegularFile(t.TempDir()); !errors.Is(err, ErrNotRegular) {
		t.Errorf("ReadRegularFile(folder) error = %v, want ErrNotRegular", err)
	}
}

// The loader reports a sample replaced by a pipe after listing as a skipped
// file, and the epoch finishes.
func TestLoaderSkipsSampleTurnedIntoPipe(t *testing.T) {
	dir := t.TempDir()
	samples := makeImageDir(t, dir, []string{"a", "b"}, 2)
	victim := samples[1].Path
	if err := os.Remove(victim); err != nil {
		t.Fatal(err)
	}
	mkfifo(t, victim)
	var reports []SkipReport
	l, err := NewLoader(samples, LoaderConfig{Size: 8, BatchSize: 2, Workers: 2,
		OnSkip: func(r SkipReport) { reports = append(reports, r) }})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	withDeadline(t, 10*time.Second, "an epoch over a named pipe", func() {
		for b := range l.Epoch(context.Background(), 0) {
			n += b.N
			b.Release()
		}
	})
	if n != 3 || len(reports) != 1 || reports[0].Path != victim || !errors.Is(reports[0].Err, ErrNotRegular) {
		t.Errorf("%d images, skips %v; want 3 images and %s skipped as not a regular file", n, reports, victim)
	}
}

func TestStatsReportsPipesTruncationAndBombs(t *testing.T) {
	root := t.TempDir()
	good := filepath.Join(root, "Train", "cat", "good.jpg")
	writeFile(t, good, augmenttest.JPEG(0, 64, 1))
	jpg := augmenttest.JPEG(1, 64, 2)
	cut := filepath.Join(root, "Train", "cat", "cut.jpg")
	writeFile(t, cut, jpg[:len(jpg)*2/3]) // header intact, scan data cut
	bomb := filepath.Join(root, "Train", "dog", "bomb.png")
	writeFile(t, bomb, augmenttest.PNGBomb(100_000, 100_000))
	fifo := filepath.Join(root, "Train", "dog", "pipe.png")
	mkfifo(t, fifo)
	ds, err := Open(root, OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var st *DatasetStats
	withDeadline(t, 10*time.Second, "Stats", func() { st, err = Stats(ds, StatsOptions{}) })
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{bomb: "image too large", cut: "truncated JPEG", fifo: "named pipe"}
	if len(st.Unreadable) != len(want) {
		t.Errorf("unreadable = %+v, want %d files", st.Unreadable, len(want))
	}
	for _, u := range st.Unreadable {
		if w, ok := want[u.Path]; !ok || !strings.Contains(u.Reason, w) {
			t.Errorf("unreadable %s: %q, want a reason containing %q", u.Path, u.Reason, w)
		}
	}
	if st.MaxPixels != DefaultMaxPixels {
		t.Errorf("MaxPixels = %d, want the decoder's default %d", st.MaxPixels, DefaultMaxPixels)
	}

	// A lower limit makes the good 64×64 image too large as well.
	st, err = Stats(ds, StatsOptions{MaxPixels: 64*64 - 1})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, u := range st.Unreadable {
		found = found || (u.Path == good && strings.Contains(u.Reason, "image too large"))
	}
	if !found {
		t.Errorf("a 64×64 image with MaxPixels 4095 is not reported: %+v", st.Unreadable)
	}
}
