// Package heatmap draws Grad-CAM maps as images: a viridis heat map over
// the photo with a legend (explain, the report gallery and serve's explain
// all show this one drawing), and the map alone in 16 bits. Pure Go.
package heatmap

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"

	"golang.org/x/image/draw"
	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

// viridis is matplotlib's viridis at 9 evenly spaced points: perceptually
// uniform and readable in grey and by the colour-blind, unlike a rainbow.
var viridis = [...][3]float64{
	{68, 1, 84}, {71, 44, 122}, {59, 81, 139}, {44, 113, 142}, {33, 144, 141},
	{39, 173, 129}, {92, 200, 99}, {170, 220, 50}, {253, 231, 37},
}

// viridisAt is viridis at v in [0,1], interpolated linearly.
func viridisAt(v float64) [3]float64 {
	v = math.Min(math.Max(v, 0), 1) * float64(len(viridis)-1)
	i := min(int(v), len(viridis)-2)
	f := v - float64(i)
	var c [3]float64
	for k := range c {
		c[k] = viridis[i][k]*(1-f) + viridis[i+1][k]*f
	}
	return c
}

const (
	overlayAlpha = 0.5 // the map's weight over the photo
	minWidth     = 320 // overlays are scaled up to this so the legend's text fits
	lineHeight   = 15  // basicfont.Face7x13 with 2 pixels of leading
	barH         = 10  // the colour bar's height
)

// OverlaySize is the width and height of OverlayPNG's image for a
// size×size map and a legend of lines lines: the photo scaled up to at
// least 320 pixels square, above the legend strip.
func OverlaySize(size, lines int) (w, h int) {
	w = max(size, minWidth)
	return w, w + 6 + barH + 4 + lineHeight*lines + 4
}

// OverlayPNG encodes the photo (size×size×3, 0–255) under the map
// (size×size in [0,1]), scaled up to at least minWidth, above a legend
// strip: a viridis colour bar from 0 to 1 and the lines of text. The image
// is OverlaySize(size, len(lines)).
func OverlayPNG(photo, m []float32, size int, lines []string) ([]byte, error) {
	if len(photo) != size*size*3 || len(m) != size*size {
		return nil, fmt.Errorf("overlay: %d photo values and %d map values for %d×%d", len(photo), len(m), size, size)
	}
	small := image.NewRGBA(image.Rect(0, 0, size, size))
	for p := 0; p < size*size; p++ {
		c := viridisAt(float64(m[p]))
		var px [3]uint8
		for k := range px {
			v := (1-overlayAlpha)*float64(photo[3*p+k]) + overlayAlpha*c[k]
			px[k] = uint8(math.Round(math.Min(math.Max(v, 0), 255)))
		}
		small.SetRGBA(p%size, p/size, color.RGBA{px[0], px[1], px[2], 255})
	}
	w, h := OverlaySize(size, len(lines))
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	draw.Draw(img, img.Bounds(), image.White, image.Point{}, draw.Src)
	draw.CatmullRom.Scale(img, image.Rect(0, 0, w, w), small, small.Bounds(), draw.Src, nil)
	// The colour bar says what yellow and purple mean: 0 left, 1 right.
	for x := 4; x < w-4; x++ {
		c := viridisAt(float64(x-4) / float64(w-9))
		for y := w + 6; y < w+6+barH; y++ {
			img.SetRGBA(x, y, color.RGBA{uint8(c[0]), uint8(c[1]), uint8(c[2]), 255})
		}
	}
	d := font.Drawer{Dst: img, Src: image.Black, Face: basicfont.Face7x13}
	for i, l := range lines {
		d.Dot = fixed.P(4, w+6+barH+4+lineHeight*(i+1)-3)
		d.DrawString(l)
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// MapPNG16 encodes the map (size×size in [0,1]) as a 16-bit grayscale PNG:
// 65535 is 1, so the map's values survive to 1.5e-5.
func MapPNG16(m []float32, size int) ([]byte, error) {
	if len(m) != size*size {
		return nil, fmt.Errorf("map: %d values for %d×%d", len(m), size, size)
	}
	img := image.NewGray16(image.Rect(0, 0, size, size))
	for p, v := range m {
		img.SetGray16(p%size, p/size, color.Gray16{Y: uint16(math.Round(math.Min(math.Max(float64(v), 0), 1) * 65535))})
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
