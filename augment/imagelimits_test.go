package augment

import (
	"bytes"
	"compress/lzw"
	"encoding/binary"
	"errors"
	"image"
	"image/color"
	"image/gif"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kfash-tf/kfash-tf/augment/augmenttest"
)

// gifFrame is one image descriptor of a hand-made GIF: its rectangle.
type gifFrame struct{ left, top, w, h int }

// handGIF writes a GIF whose logical screen and frames are as given, with
// real LZW data for frames up to 1e6 pixels and a truncated stream for
// larger ones (enough for header scans; a decoder fails on them).
func handGIF(screenW, screenH int, frames ...gifFrame) []byte {
	var b bytes.Buffer
	u16 := func(v int) { binary.Write(&b, binary.LittleEndian, uint16(v)) }
	b.WriteString("GIF89a")
	u16(screenW)
	u16(screenH)
	b.Write([]byte{0x80, 0, 0, 0, 0, 0, 255, 255, 255}) // 2-colour global table
	b.Write([]byte{0x21, 0xF9, 4, 0, 0, 0, 0, 0})       // a graphic control extension
	for _, f := range frames {
		b.WriteByte(0x2C)
		u16(f.left)
		u16(f.top)
		u16(f.w)
		u16(f.h)
		b.Write([]byte{0, 2}) // no local table; LZW code size 2
		var z bytes.Buffer
		zw := lzw.NewWriter(&z, lzw.LSB, 2)
		zw.Write(make([]byte, min(f.w*f.h, 1)+max(0, min(f.w*f.h, 1_000_000)-1)))
		if f.w*f.h <= 1_000_000 {
			zw.Close()
		}
		for data := z.Bytes(); len(data) > 0; {
			n := min(len(data), 255)
			b.WriteByte(byte(n))
			b.Write(data[:n])
			data = data[n:]
		}
		b.WriteByte(0)
	}
	b.WriteByte(0x3B)
	return b.Bytes()
}

// withoutTrailer replaces a GIF's trailer byte by tail.
func withoutTrailer(g []byte, tail ...byte) []byte {
	return append(g[:len(g)-1:len(g)-1], tail...)
}

func TestImageLimitsGIF(t *testing.T) {
	frames := make([]gifFrame, 101)
	for i := range frames {
		frames[i] = gifFrame{0, 0, 2, 2}
	}
	for _, c := range []struct {
		name    string
		data    []byte
		limits  ImageLimits
		frames  int
		pixels  int64
		errIs   error
		errText string
	}{
		{name: "one frame", data: handGIF(4, 3, gifFrame{0, 0, 4, 3}), frames: 1, pixels: 12},
		{name: "offset frames", data: handGIF(10, 10, gifFrame{0, 0, 10, 10}, gifFrame{5, 5, 5, 5}), frames: 2, pixels: 125},
		// The finding: a 1×1 header whose frame is 20000×20000.
		{name: "frame bomb", data: handGIF(1, 1, gifFrame{0, 0, 20000, 20000}), errText: "outside the 1x1 logical screen"},
		{name: "frame past the edge", data: handGIF(10, 10, gifFrame{5, 0, 6, 10}), errText: "outside"},
		{name: "too many frames", data: handGIF(2, 2, frames...), errIs: ErrTooManyFrames},
		{name: "frames over the pixel limit", data: handGIF(1000, 1000, gifFrame{0, 0, 1000, 1000}, gifFrame{0, 0, 1000, 1000}),
			limits: ImageLimits{MaxPixels: 1_500_000}, errIs: ErrTooLarge, errText: "2 frames hold 2000000 pixels"},
		{name: "screen over the pixel limit", data: handGIF(3000, 3000), limits: ImageLimits{MaxPixels: 1000}, errIs: ErrTooLarge},
		{name: "truncated after a frame", data: handGIF(4, 4, gifFrame{0, 0, 4, 4})[:40], frames: 1, pixels: 16},
		{name: "unknown block", data: withoutTrailer(handGIF(4, 4, gifFrame{0, 0, 4, 4}), 0x99), errText: "unknown block"},
	} {
		info, err := c.limits.Check(c.data)
		switch {
		case c.errIs != nil || c.errText != "":
			if err == nil || (c.errIs != nil && !errors.Is(err, c.errIs)) || !strings.Contains(err.Error(), c.errText) {
				t.Errorf("%s: %v, want an error (%v, %q)", c.name, err, c.errIs, c.errText)
			}
		case err != nil:
			t.Errorf("%s: %v", c.name, err)
		case info.Format != "gif" || info.Frames != c.frames || info.Pixels != c.pixels:
			t.Errorf("%s: %+v, want %d frames, %d pixels", c.name, info, c.frames, c.pixels)
		}
	}
}

// The scan agrees with Go's decoder on a GIF the standard encoder wrote.
func TestImageLimitsEncodedGIF(t *testing.T) {
	pal := color.Palette{color.Black, color.White}
	anim := &gif.GIF{Config: image.Config{Width: 30, Height: 20, ColorModel: pal}}
	for i := 0; i < 3; i++ {
		anim.Image = append(anim.Image, image.NewPaletted(image.Rect(0, 0, 30, 20), pal))
		anim.Delay = append(anim.Delay, 10)
	}
	var buf bytes.Buffer
	if err := gif.EncodeAll(&buf, anim); err != nil {
		t.Fatal(err)
	}
	info, err := ImageLimits{}.Check(buf.Bytes())
	if err != nil || info.Frames != 3 || info.Pixels != 1800 || info.Width != 30 {
		t.Errorf("Check = %+v, %v; want 3 frames of 30x20", info, err)
	}
	if _, err := (ImageLimits{MaxFrames: 2}).Check(buf.Bytes()); !errors.Is(err, ErrTooManyFrames) {
		t.Errorf("MaxFrames 2: %v", err)
	}
}

func TestImageLimitsOtherFormats(t *testing.T) {
	info, err := ImageLimits{}.Check(augmenttest.PNG(0, 40, 1))
	if err != nil || info.Format != "png" || info.Pixels != 1600 || info.Frames != 1 {
		t.Errorf("PNG: %+v, %v", info, err)
	}
	if _, err := (ImageLimits{MaxPixels: 1000}).Check(augmenttest.PNGBomb(20000, 20000)); !errors.Is(err, ErrTooLarge) {
		t.Errorf("PNG bomb: %v", err)
	}
	if _, err := (ImageLimits{}).Check([]byte("hello")); !errors.Is(err, ErrNotImage) {
		t.Errorf("text: %v", err)
	}
	if _, err := (ImageLimits{}).Check(nil); err == nil {
		t.Error("empty data accepted")
	}
}

// FuzzImageLimits: Check never panics, and what it accepts is within the
// limits it was given. Seeds: testdata/fuzz/image-limits at the top of the
// repository.
func FuzzImageLimits(f *testing.F) {
	seeds, err := filepath.Glob(filepath.Join("..", "testdata", "fuzz", "image-limits", "*"))
	if err != nil || len(seeds) == 0 {
		f.Fatalf("no seed corpus in ../testdata/fuzz/image-limits: %v", err)
	}
	for _, p := range seeds {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add(handGIF(1, 1, gifFrame{0, 0, 20000, 20000}))
	lim := ImageLimits{MaxPixels: 1 << 20, MaxFrames: 8}
	f.Fuzz(func(t *testing.T, data []byte) {
		info, err := lim.Check(data)
		if err != nil {
			return
		}
		if info.Frames > lim.MaxFrames || info.Pixels > lim.MaxPixels || info.Pixels < int64(info.Width)*int64(info.Height) {
			t.Fatalf("accepted %+v beyond %+v", info, lim)
		}
	})
}
