package augment

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"image"
	"image/color"
	"image/color/palette"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
)

// TestDecodeColorModels encodes images of every colour model the decoders
// produce and checks the RGB they decode to, composited over black.
func TestDecodeColorModels(t *testing.T) {
	const w, h = 5, 3
	fill := func(img interface{ Set(x, y int, c color.Color) }, c color.Color) {
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				img.Set(x, y, c)
			}
		}
	}
	rect := image.Rect(0, 0, w, h)
	tests := []struct {
		name string
		ext  string
		img  func() image.Image
		want [3]uint8
		tol  uint8 // JPEG is lossy
	}{
		{"gray PNG", ".png", func() image.Image {
			m := image.NewGray(rect)
			fill(m, color.Gray{Y: 77})
			return m
		}, [3]uint8{77, 77, 77}, 0},
		{"16-bit gray PNG", ".png", func() image.Image {
			m := image.NewGray16(rect)
			fill(m, color.Gray16{Y: 0x12ff})
			return m
		}, [3]uint8{0x12, 0x12, 0x12}, 0},
		{"16-bit RGBA PNG", ".png", func() image.Image {
			m := image.NewNRGBA64(rect)
			fill(m, color.NRGBA64{R: 0xabcd, G: 0x0101, B: 0xfe00, A: 0xffff})
			return m
		}, [3]uint8{0xab, 0x01, 0xfe}, 0},
		{"paletted PNG", ".png", func() image.Image {
			m := image.NewPaletted(rect, color.Palette{color.RGBA{10, 20, 30, 255}, color.RGBA{200, 100, 50, 255}})
			fill(m, color.RGBA{200, 100, 50, 255})
			return m
		}, [3]uint8{200, 100, 50}, 0},
		{"transparent PNG becomes black", ".png", func() image.Image {
			m := image.NewNRGBA(rect)
			fill(m, color.NRGBA{R: 250, G: 240, B: 230, A: 0})
			return m
		}, [3]uint8{0, 0, 0}, 0},
		{"half-transparent PNG is composited over black", ".png", func() image.Image {
			m := image.NewNRGBA(rect)
			fill(m, color.NRGBA{R: 200, G: 100, B: 50, A: 128})
			return m
		}, [3]uint8{100, 50, 25}, 1},
		{"GIF with transparent palette entry", ".gif", func() image.Image {
			m := image.NewPaletted(rect, color.Palette{color.RGBA{}, color.RGBA{255, 255, 255, 255}})
			fill(m, color.RGBA{})
			return m
		}, [3]uint8{0, 0, 0}, 0},
		{"GIF", ".gif", func() image.Image {
			m := image.NewPaletted(rect, palette.Plan9)
			fill(m, color.RGBA{0, 0, 255, 255})
			return m
		}, [3]uint8{0, 0, 255}, 0},
		{"JPEG (YCbCr)", ".jpg", func() image.Image {
			m := image.NewRGBA(rect)
			fill(m, color.RGBA{200, 30, 90, 255})
			return m
		}, [3]uint8{200, 30, 90}, 4},
		{"gray JPEG", ".jpg", func() image.Image {
			m := image.NewGray(rect)
			fill(m, color.Gray{Y: 128})
			return m
		}, [3]uint8{128, 128, 128}, 2},
		{"BMP", ".bmp", func() image.Image {
			m := image.NewRGBA(rect)
			fill(m, color.RGBA{1, 2, 3, 255})
			return m
		}, [3]uint8{1, 2, 3}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "img"+tt.ext)
			writeImage(t, path, tt.img())
			got, err := DecodeFile(path)
			if err != nil {
				t.Fatalf("DecodeFile: %v", err)
			}
			checkRGB(t, got, w, h, tt.want, tt.tol)
		})
	}
}

// TestToRGBModels covers the models no standard encoder writes (CMYK comes
// from Adobe JPEGs) and alpha-premultiplied sources, in memory.
func TestToRGBModels(t *testing.T) {
	rect := image.Rect(2, 3, 6, 5) // a non-zero origin must come out at (0, 0)
	tests := []struct {
		name string
		img  image.Image
		want [3]uint8
		tol  uint8
	}{
		{"CMYK", func() image.Image {
			m := image.NewCMYK(rect)
			for i := range m.Pix {
				m.Pix[i] = []uint8{0, 255, 255, 0}[i%4] // pure red
			}
			return m
		}(), [3]uint8{255, 0, 0}, 0},
		{"YCbCr", func() image.Image {
			m := image.NewYCbCr(rect, image.YCbCrSubsampleRatio420)
			for i := range m.Y {
				m.Y[i] = 128
			}
			for i := range m.Cb {
				m.Cb[i], m.Cr[i] = 128, 128
			}
			return m
		}(), [3]uint8{128, 128, 128}, 0},
		{"RGBA premultiplied, half alpha", &image.Uniform{C: color.RGBA{100, 50, 25, 128}}, [3]uint8{100, 50, 25}, 0},
		{"NRGBA64 half alpha", func() image.Image {
			m := image.NewNRGBA64(rect)
			for y := rect.Min.Y; y < rect.Max.Y; y++ {
				for x := rect.Min.X; x < rect.Max.X; x++ {
					m.SetNRGBA64(x, y, color.NRGBA64{R: 0xffff, G: 0x8000, B: 0, A: 0x8000})
				}
			}
			return m
		}(), [3]uint8{128, 64, 0}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := tt.img
			if u, ok := src.(*image.Uniform); ok {
				// Uniform is unbounded: give it a frame.
				m := image.NewRGBA(rect)
				for y := rect.Min.Y; y < rect.Max.Y; y++ {
					for x := rect.Min.X; x < rect.Max.X; x++ {
						m.Set(x, y, u.C)
					}
				}
				src = m
			}
			got := toRGB(src)
			checkRGB(t, got, rect.Dx(), rect.Dy(), tt.want, tt.tol)
		})
	}
}

// checkRGB checks that img is w×h at the origin, opaque, and every pixel is
// want within tol.
func checkRGB(t *testing.T, img *image.RGBA, w, h int, want [3]uint8, tol uint8) {
	t.Helper()
	if b := img.Bounds(); b != image.Rect(0, 0, w, h) {
		t.Fatalf("bounds = %v, want %v", b, image.Rect(0, 0, w, h))
	}
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			c := img.RGBAAt(x, y)
			if c.A != 255 {
				t.Fatalf("pixel (%d,%d) alpha = %d, want 255", x, y, c.A)
			}
			got := [3]uint8{c.R, c.G, c.B}
			for i := range got {
				d := int(got[i]) - int(want[i])
				if d > int(tol) || d < -int(tol) {
					t.Fatalf("pixel (%d,%d) = %v, want %v (±%d)", x, y, got, want, tol)
				}
			}
		}
	}
}

func TestDecodeErrors(t *testing.T) {
	jpg := encode(t, ".jpg", patternImage(64, 48, 1))
	png := encode(t, ".png", patternImage(64, 48, 1))
	tests := []struct {
		name    string
		file    string
		data    []byte // nil: do not create the file
		wantErr string
		is      error
	}{
		{"truncated JPEG", "cut.jpg", jpg[:len(jpg)/2], "truncated JPEG", nil},
		{"JPEG header only", "head.jpg", jpg[:20], "truncated JPEG", nil},
		{"truncated PNG", "cut.png", png[:len(png)-30], "truncated PNG", nil},
		{"text named .jpg", "notes.jpg", []byte("these are not the pixels you are looking for\n"), "not a supported image", ErrNotImage},
		{"empty file", "empty.png", []byte{}, "empty file", nil},
		{"corrupt JPEG body", "bad.jpg", append(append([]byte{}, jpg[:200]...), bytes.Repeat([]byte{0xff, 0x00, 0x13}, 300)...), "JPEG", nil},
		{"missing file", "missing.jpg", nil, "cannot read", fs.ErrNotExist},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), tt.file)
			if tt.data != nil {
				writeFile(t, path, tt.data)
			}
			img, err := DecodeFile(path)
			if err == nil {
				t.Fatalf("DecodeFile succeeded (%v), want error", img.Bounds())
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "augment: "+path+": ") {
				t.Errorf("error %q does not start with %q", msg, "augment: "+path+": ")
			}
			if !strings.Contains(msg, tt.wantErr) {
				t.Errorf("error %q does not contain %q", msg, tt.wantErr)
			}
			if strings.Count(msg, path) != 1 {
				t.Errorf("error %q names the path %d times, want once", msg, strings.Count(msg, path))
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("errors.Is(%v, %v) = false", err, tt.is)
			}
		})
	}
}

// pngHeader returns a PNG made of the signature and an IHDR chunk claiming
// w×h RGB pixels, with no pixel data at all: decoding it fully would fail
// with an EOF, so rejecting it as too large proves the limit is checked on
// the header first.
func pngHeader(w, h uint32) []byte {
	var b bytes.Buffer
	b.WriteString("\x89PNG\r\n\x1a\n")
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr[0:], w)
	binary.BigEndian.PutUint32(ihdr[4:], h)
	ihdr[8], ihdr[9] = 8, 2 // 8-bit RGB
	chunk := append([]byte("IHDR"), ihdr...)
	_ = binary.Write(&b, binary.BigEndian, uint32(len(ihdr)))
	b.Write(chunk)
	_ = binary.Write(&b, binary.BigEndian, crc32.ChecksumIEEE(chunk))
	return b.Bytes()
}

func TestDecodeTooLarge(t *testing.T) {
	dir := t.TempDir()
	bomb := filepath.Join(dir, "bomb.png")
	writeFile(t, bomb, pngHeader(20000, 20000))
	small := filepath.Join(dir, "small.png")
	writeImage(t, small, patternImage(20, 10, 0))

	tests := []struct {
		name    string
		path    string
		opts    DecodeOptions
		wantErr string
	}{
		{"20000x20000 header, default limit", bomb, DecodeOptions{}, "20000x20000 = 400000000 pixels, more than the limit of 50000000"},
		{"200 pixels, limit 100", small, DecodeOptions{MaxPixels: 100}, "20x10 = 200 pixels, more than the limit of 100"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.opts.DecodeFile(tt.path)
			if !errors.Is(err, ErrTooLarge) {
				t.Fatalf("DecodeFile error = %v, want ErrTooLarge", err)
			}
			if !strings.Contains(err.Error(), tt.path) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %q should name %s and contain %q", err, tt.path, tt.wantErr)
			}
		})
	}
	if _, err := (DecodeOptions{MaxPixels: 200}).DecodeFile(small); err != nil {
		t.Errorf("an image of exactly MaxPixels was rejected: %v", err)
	}
}

func TestDecodeBytes(t *testing.T) {
	want := patternImage(9, 7, 3)
	got, err := DecodeBytes(encode(t, ".png", want))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Pix, want.Pix) {
		t.Error("PNG round trip changed the pixels")
	}
	_, err = DecodeBytes([]byte("GIF89a"))
	if err == nil || !strings.HasPrefix(err.Error(), "augment: truncated GIF") {
		t.Errorf("DecodeBytes(truncated GIF) error = %v, want it to start with %q", err, "augment: truncated GIF")
	}
}
