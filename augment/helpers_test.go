package augment

import (
	"bytes"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/image/bmp"
)

// patternImage returns a w×h opaque image whose pixels depend on k, so that
// every generated file has different content.
func patternImage(w, h, k int) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			img.SetRGBA(x, y, color.RGBA{
				R: uint8(x*255/max(1, w-1) + k*37),
				G: uint8(y*255/max(1, h-1) + k*11),
				B: uint8((x + y + k*5) * 3),
				A: 255,
			})
		}
	}
	return img
}

// encode encodes img in the format named by ext (".png", ".jpg", ".gif",
// ".bmp").
func encode(t testing.TB, ext string, img image.Image) []byte {
	t.Helper()
	var buf bytes.Buffer
	var err error
	switch strings.ToLower(ext) {
	case ".png":
		err = png.Encode(&buf, img)
	case ".jpg", ".jpeg":
		err = jpeg.Encode(&buf, img, &jpeg.Options{Quality: 95})
	case ".gif":
		err = gif.Encode(&buf, img, nil)
	case ".bmp":
		err = bmp.Encode(&buf, img)
	default:
		t.Fatalf("encode: unknown extension %q", ext)
	}
	if err != nil {
		t.Fatalf("encode %s: %v", ext, err)
	}
	return buf.Bytes()
}

// writeFile writes data at path, creating its folders.
func writeFile(t testing.TB, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// writeImage encodes img by the extension of path and writes it.
func writeImage(t testing.TB, path string, img image.Image) {
	t.Helper()
	writeFile(t, path, encode(t, filepath.Ext(path), img))
}

// makeImageDir writes perClass PNG images of varied sizes for each class
// under dir/<class>/ and returns their samples, labels following classes.
func makeImageDir(t testing.TB, dir string, classes []string, perClass int) []Sample {
	t.Helper()
	var samples []Sample
	k := 0
	for label, class := range classes {
		for i := 0; i < perClass; i++ {
			p := filepath.Join(dir, class, "img"+string(rune('a'+i%26))+string(rune('a'+i/26))+".png")
			writeImage(t, p, patternImage(24+k%5*3, 18+k%4*5, k))
			samples = append(samples, Sample{Path: p, Label: label})
			k++
		}
	}
	return samples
}

// touch creates empty files: Open only lists names, so dataset tests need
// no real images.
func touch(t testing.TB, root string, rel ...string) {
	t.Helper()
	for _, r := range rel {
		writeFile(t, filepath.Join(root, filepath.FromSlash(r)), nil)
	}
}

// mkdirs creates empty folders.
func mkdirs(t testing.TB, root string, rel ...string) {
	t.Helper()
	for _, r := range rel {
		if err := os.MkdirAll(filepath.Join(root, filepath.FromSlash(r)), 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

// rgbAt returns the RGB of img at (x, y).
func rgbAt(img *image.RGBA, x, y int) [3]uint8 {
	c := img.RGBAAt(x, y)
	return [3]uint8{c.R, c.G, c.B}
}
