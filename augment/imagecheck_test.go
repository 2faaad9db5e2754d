package augment

import (
	"bytes"
	"errors"
	"image"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// imageFixtures holds a small image of every supported format (tiny.*: 6×5,
// the WebP 75×100), the
// same cut short (truncated.*) and decompression-bomb headers: the seeds of
// FuzzDecodeBytes, which double as the format fixtures of the tests (see
// testdata/README.md).
const imageFixtures = fuzzCorpusDir

func readFixture(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(imageFixtures, name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// Every format decodes from its fixture file, and passes both checks; the
// same image cut short fails Check, which decodes every pixel.
func TestCheckAndDecodeFormats(t *testing.T) {
	for ext, size := range map[string]image.Point{"png": {6, 5}, "jpg": {6, 5}, "gif": {6, 5}, "bmp": {6, 5}, "webp": {75, 100}} {
		t.Run(ext, func(t *testing.T) {
			tiny := filepath.Join(imageFixtures, "tiny."+ext)
			img, err := DecodeFile(tiny)
			if err != nil {
				t.Fatal(err)
			}
			if got := img.Bounds().Size(); got != size {
				t.Errorf("%s decodes to %v, want %v", tiny, got, size)
			}
			data := readFixture(t, "tiny."+ext)
			if err := (DecodeOptions{}).CheckHeader(bytes.NewReader(data)); err != nil {
				t.Errorf("CheckHeader: %v", err)
			}
			if err := (DecodeOptions{}).Check(data); err != nil {
				t.Errorf("Check: %v", err)
			}
			cut := readFixture(t, "truncated."+ext)
			err = DecodeOptions{}.Check(cut)
			if err == nil || strings.HasPrefix(err.Error(), "augment:") {
				t.Errorf("Check of truncated.%s: %v, want a reason without prefix", ext, err)
			}
			if got, want := err, (DecodeOptions{}).Check(cut); got.Error() != want.Error() {
				t.Errorf("Check is not deterministic: %v, then %v", got, want)
			}
			if _, derr := DecodeBytes(cut); derr == nil || derr.Error() != "augment: "+err.Error() {
				t.Errorf("Check says %q, DecodeBytes %q: want the same reason", err, derr)
			}
		})
	}
}

// CheckHeader reads the header only: it passes a JPEG cut short after its
// header, which Check refuses, and refuses what no header can excuse.
func TestCheckHeader(t *testing.T) {
	jpg := readFixture(t, "tiny.jpg")
	cut := jpg[:len(jpg)-10] // the scan data cut short
	if err := (DecodeOptions{}).CheckHeader(bytes.NewReader(cut)); err != nil {
		t.Errorf("CheckHeader of a JPEG cut after its header: %v", err)
	}
	if err := (DecodeOptions{}).Check(cut); err == nil || !strings.Contains(err.Error(), "truncated JPEG") {
		t.Errorf("Check of a cut JPEG: %v, want truncated JPEG", err)
	}
	for _, tc := range []struct {
		name string
		data []byte
		opts DecodeOptions
		is   error
		want string
	}{
		{"empty", nil, DecodeOptions{}, nil, "empty file"},
		{"not an image", []byte("this is not an image"), DecodeOptions{}, ErrNotImage, ""},
		{"bomb", readFixture(t, "bomb.png"), DecodeOptions{}, ErrTooLarge, "(not decoded)"},
		{"over MaxPixels", readFixture(t, "tiny.png"), DecodeOptions{MaxPixels: 29}, ErrTooLarge, "6x5 = 30 pixels, more than the limit of 29"},
	} {
		for check, err := range map[string]error{
			"CheckHeader": tc.opts.CheckHeader(bytes.NewReader(tc.data)),
			"Check":       tc.opts.Check(tc.data),
		} {
			if err == nil || (tc.is != nil && !errors.Is(err, tc.is)) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%s: %s: %v, want an error wrapping %v containing %q", tc.name, check, err, tc.is, tc.want)
			}
		}
	}
}
