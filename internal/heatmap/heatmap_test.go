package heatmap

import (
	"bytes"
	"image/png"
	"testing"
)

// TestOverlayPNG checks the drawing's size, that the map shows (yellow
// where it is 1, purple where 0, over a grey photo) and the 16-bit map's
// round trip.
func TestOverlayPNG(t *testing.T) {
	const size = 8
	photo := make([]float32, size*size*3)
	for i := range photo {
		photo[i] = 128
	}
	m := make([]float32, size*size)
	for p := range m {
		if p%size >= size/2 {
			m[p] = 1 // right half hot
		}
	}
	b, err := OverlayPNG(photo, m, size, []string{"a", "b"})
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	w, h := OverlaySize(size, 2)
	if got := img.Bounds().Size(); got.X != w || got.Y != h || w != minWidth {
		t.Fatalf("overlay is %v, want %d×%d", got, w, h)
	}
	_, _, bl, _ := img.At(w/8, w/2).RGBA()   // purple: blue > yellow's
	_, _, by, _ := img.At(7*w/8, w/2).RGBA() // yellow
	if bl <= by {
		t.Errorf("blue at cold %d ≤ at hot %d: the map does not show", bl>>8, by>>8)
	}
	if _, err := OverlayPNG(photo[:3], m, size, nil); err == nil {
		t.Error("a short photo was drawn")
	}
	raw, err := MapPNG16(m, size)
	if err != nil {
		t.Fatal(err)
	}
	g, err := png.Decode(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	for p, v := range m {
		r, _, _, _ := g.At(p%size, p/size).RGBA()
		if want := uint32(v * 65535); r != want {
			t.Fatalf("map pixel %d is %d, want %d", p, r, want)
		}
	}
}
