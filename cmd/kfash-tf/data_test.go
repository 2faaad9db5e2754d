//go:build unix

package main

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kfash-tf/kfash-tf/augment/augmenttest"
)

// runWithin is run with a deadline: a command still running after d is
// killed and the test fails, so that a command blocked on a named pipe
// fails the test instead of hanging it.
func runWithin(t *testing.T, d time.Duration, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary(t), args...)
	var o, e strings.Builder
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("kfash-tf %s: still running after %s (blocked?)\n%s", strings.Join(args, " "), d, e.String())
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return o.String(), e.String(), code
}

// mkfifo makes a named pipe that no one ever writes to: reading it the
// ordinary way blocks forever.
func mkfifo(t *testing.T, path string) {
	t.Helper()
	if err := syscall.Mkfifo(path, 0o644); err != nil {
		t.Skipf("cannot make a named pipe: %v", err)
	}
}

// A named pipe among the photos is skipped with a reason by 'data stats'
// and left out by 'train'; neither blocks on it.
func TestDataNamedPipeDoesNotHangTrainOrStats(t *testing.T) {
	data := tinyDataset(t, 4, 2)
	pipe := filepath.Join(data, "Train", "circle", "pipe.png")
	mkfifo(t, pipe)

	stdout, stderr, code := runWithin(t, 60*time.Second, "data", "stats", data)
	if code != 0 {
		t.Fatalf("data stats: exit %d\n%s", code, stderr)
	}
	if !strings.Contains(stdout, "unreadable files: 1") || !strings.Contains(stdout, pipe+": not a regular file: it is a named pipe") {
		t.Errorf("data stats does not report the pipe with its reason:\n%s", stdout)
	}

	out := filepath.Join(t.TempDir(), "run")
	_, stderr, code = runWithin(t, 5*time.Minute, "train", "vgg8", "--data", data, "--epochs", "1", "--batch-size", "4", "--out", out)
	if code != 0 {
		t.Fatalf("train: exit %d\n%s", code, stderr)
	}
	if !strings.Contains(stderr, "12 train / 6 validation images") {
		t.Errorf("train counted the pipe as an image:\n%s", stderr)
	}
}

// 'data stats' decodes every image, so it lists the files a run would
// skip: a JPEG cut short and a decompression bomb, each with its reason.
func TestDataStatsReportsTruncatedAndBombImages(t *testing.T) {
	data := tinyDataset(t, 2, 1)
	jpg := augmenttest.JPEG(0, 64, 1)
	cut := filepath.Join(data, "Train", "circle", "cut.jpg")
	bomb := filepath.Join(data, "Validation", "square", "bomb.png")
	for p, b := range map[string][]byte{cut: jpg[:len(jpg)*2/3], bomb: augmenttest.PNGBomb(100_000, 100_000)} {
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	stdout, stderr, code := runWithin(t, 60*time.Second, "data", "stats", data)
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	for _, want := range []string{"unreadable files: 2", cut + ": truncated JPEG", bomb + ": image too large"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("data stats lacks %q:\n%s", want, stdout)
		}
	}
	// --max-pixels below the generated 40×40 photos flags them all.
	stdout, stderr, code = runWithin(t, 60*time.Second, "data", "stats", data, "--max-pixels", "1000")
	if code != 0 || !strings.Contains(stdout, "unreadable files: 11") {
		t.Errorf("--max-pixels 1000: exit %d, want the 9 photos, the cut JPEG and the bomb listed\n%s%s", code, stdout, stderr)
	}
	for _, bad := range []string{"0", "-5", "nan", "inf"} {
		if _, stderr, code := runWithin(t, 60*time.Second, "data", "stats", data, "--max-pixels", bad); code == 0 || !strings.Contains(stderr, "--max-pixels") {
			t.Errorf("--max-pixels %s: exit %d, stderr %q; want an error naming the flag", bad, code, stderr)
		}
	}
}

// Out-of-range and non-finite flags are refused before anything is written:
// no run folder is left behind.
func TestFlagOutOfRangeCreatesNoRunFolder(t *testing.T) {
	data := tinyDataset(t, 2, 1)
	cases := []struct {
		flag, value, want string
	}{
		{"--label-smoothing", "2", "--label-smoothing 2: must be in [0, 1)"},
		{"--label-smoothing", "-1", "--label-smoothing -1: must be in [0, 1)"},
		{"--label-smoothing", "nan", "--label-smoothing NaN: must be a finite number"},
		{"--gamma", "nan", "--gamma NaN: must be a finite number"},
		{"--gamma", "0", "--gamma 0: must be in (0, 1]"},
		{"--lr", "inf", "--lr +Inf: must be a finite number"},
		{"--lr", "0", "--lr 0: must be a positive number"},
		{"--weight-decay", "-0.1", "--weight-decay -0.1: must not be negative"},
		{"--momentum", "1", "--momentum 1: must be in [0, 1)"},
		{"--clip-norm", "-1", "--clip-norm -1: must not be negative"},
		{"--warmup-epochs", "-2", "--warmup-epochs -2: must not be negative"},
		{"--dropout", "1.5", "--dropout 1.5: must be in [0, 1)"},
		{"--patience", "-1", "--patience -1: must not be negative"},
		{"--workers", "0", "--workers 0: must be in [1, 1024]"},
		{"--prefetch", "-1", "--prefetch -1: must be in [0, 1024]"},
		{"--cache-mb", "-1", "--cache-mb -1: must be in [0, 1073741824]"},
		{"--intra-op-threads", "-1", "--intra-op-threads -1: must be in [0, 4096]"},
		{"--step-epochs", "0", "--step-epochs 0: must be at least 1"},
	}
	for _, c := range cases {
		out := filepath.Join(t.TempDir(), "run")
		_, stderr, code := runWithin(t, 60*time.Second, "train", "vgg8", "--data", data, "--epochs", "1", "--out", out, c.flag, c.value)
		if code == 0 || !strings.Contains(stderr, c.want) {
			t.Errorf("%s %s: exit %d, stderr %q; want an error containing %q", c.flag, c.value, code, stderr, c.want)
		}
		if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s %s: run folder %s exists (%v), want none", c.flag, c.value, out, err)
		}
	}
	for _, c := range []struct {
		flag string
		args []string
	}{
		{"--top", []string{"predict", "x", "y", "--top", "0"}},
		{"--batch-size", []string{"predict", "x", "y", "--batch-size", "-1"}},
		{"--batch-size", []string{"evaluate", "x", "--data", data, "--batch-size", "0"}},
		{"--min-seconds", []string{"bench", "vgg8", "--min-seconds", "nan"}},
		{"--weight-decay", []string{"bench", "vgg8", "--weight-decay", "-1"}},
		{"--val-fraction", []string{"data", "fashion-mnist", "--out", filepath.Join(t.TempDir(), "f"), "--val-fraction", "nan"}},
		{"--workers", []string{"data", "import-kfashion", "--src", data, "--out", filepath.Join(t.TempDir(), "k"), "--workers", "0"}},
		{"--epochs", []string{"sweep", "--preset", "seed", "--data", data, "--epochs", "0", "--dry-run"}},
		{"--dropout", []string{"models", "show", "vgg8", "--dropout", "inf"}},
	} {
		if _, stderr, code := runWithin(t, 60*time.Second, c.args...); code == 0 || !strings.Contains(stderr, "kfash-tf: "+c.flag+" ") {
			t.Errorf("kfash-tf %s: exit %d, stderr %q; want an error naming %s", strings.Join(c.args, " "), code, stderr, c.flag)
		}
	}
}
