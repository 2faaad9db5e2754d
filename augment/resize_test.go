package augment

import (
	"bytes"
	"image"
	"image/color"
	"image/draw"
	"image/jpeg"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/disintegration/gift"
	"github.com/kfash-tf/kfash-tf/augment/augmenttest"
)

// giftResize is the reference the resizer reproduces: gift's Resize with
// LinearResampling of the RGBA conversion of src.
func giftResize(src image.Image, w, h int) *image.RGBA {
	dst := image.NewRGBA(image.Rect(0, 0, w, h))
	gift.New(gift.Resize(w, h, gift.LinearResampling)).Draw(dst, toRGB(src))
	return dst
}

// noisyYCbCr is noisyRGBA converted to YCbCr with the given subsampling,
// chroma averaged over the pixels it covers.
func noisyYCbCr(w, h int, ratio image.YCbCrSubsampleRatio, seed int64) *image.YCbCr {
	src := augmenttest.Noise(w, h, seed)
	img := image.NewYCbCr(src.Rect, ratio)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			c := src.RGBAAt(x, y)
			yy, cb, cr := color.RGBToYCbCr(c.R, c.G, c.B)
			img.Y[img.YOffset(x, y)] = yy
			ci := img.COffset(x, y)
			img.Cb[ci], img.Cr[ci] = cb, cr // the last pixel of each block wins: fine for a test image
		}
	}
	return img
}

// jpegYCbCr encodes img as a JPEG and decodes it again with image/jpeg:
// the *image.YCbCr the loader resizes.
func jpegYCbCr(tb testing.TB, img image.Image) *image.YCbCr {
	tb.Helper()
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 90}); err != nil {
		tb.Fatal(err)
	}
	dec, err := jpeg.Decode(&buf)
	if err != nil {
		tb.Fatal(err)
	}
	y, ok := dec.(*image.YCbCr)
	if !ok {
		tb.Fatalf("image/jpeg decoded a colour JPEG to %T, want *image.YCbCr", dec)
	}
	return y
}

// subsampleRatios are all the chroma subsamplings image.YCbCr knows.
var subsampleRatios = []image.YCbCrSubsampleRatio{
	image.YCbCrSubsampleRatio444, image.YCbCrSubsampleRatio422, image.YCbCrSubsampleRatio420,
	image.YCbCrSubsampleRatio440, image.YCbCrSubsampleRatio411, image.YCbCrSubsampleRatio410,
}

// compareImages returns the largest and the mean absolute difference of the
// RGB values of two images of the same size, and checks alpha is opaque.
func compareImages(t *testing.T, got, want *image.RGBA) (maxDiff int, mean float64) {
	t.Helper()
	if got.Rect.Size() != want.Rect.Size() {
		t.Fatalf("size %v, want %v", got.Rect.Size(), want.Rect.Size())
	}
	var sum int
	n := 0
	for y := 0; y < want.Rect.Dy(); y++ {
		for x := 0; x < want.Rect.Dx(); x++ {
			g := got.RGBAAt(got.Rect.Min.X+x, got.Rect.Min.Y+y)
			w := want.RGBAAt(want.Rect.Min.X+x, want.Rect.Min.Y+y)
			if g.A != 255 {
				t.Fatalf("pixel (%d,%d) alpha %d, want 255", x, y, g.A)
			}
			for _, d := range [3]int{int(g.R) - int(w.R), int(g.G) - int(w.G), int(g.B) - int(w.B)} {
				d = max(d, -d)
				maxDiff = max(maxDiff, d)
				sum += d
				n++
			}
		}
	}
	return maxDiff, float64(sum) / float64(n)
}

// The resizer computes gift's LinearResampling resize: equal up to one
// level where float rounding lands on .5, for downscaling, upscaling, both
// at once and the identity, from RGBA, from every YCbCr subsampling (read
// without the RGBA conversion), and from sub-images with a non-zero origin.
func TestResizeMatchesGift(t *testing.T) {
	jpegPhoto := jpegYCbCr(t, augmenttest.Noise(97, 61, 9))
	cases := []struct {
		name string
		src  image.Image
		w, h int
	}{
		{"rgba 400x533 to 150 (the photos)", augmenttest.Noise(400, 533, 1), 150, 150},
		{"rgba 40x30 to 32 (down and up)", augmenttest.Noise(40, 30, 2), 32, 32},
		{"rgba 20x20 to 57 (upscale)", augmenttest.Noise(20, 20, 3), 57, 57},
		{"rgba 32x32 to 32 (same size)", augmenttest.Noise(32, 32, 4), 32, 32},
		{"rgba 200x8 to 33x17", augmenttest.Noise(200, 8, 5), 33, 17},
		{"rgba 1x1 to 5", augmenttest.Noise(1, 1, 6), 5, 5},
		{"rgba sub-image", augmenttest.Noise(90, 70, 7).SubImage(image.Rect(13, 9, 80, 61)), 24, 24},
		{"jpeg 97x61 (image/jpeg's YCbCr)", jpegPhoto, 32, 32},
		{"gray 50x40", func() image.Image {
			g := image.NewGray(image.Rect(0, 0, 50, 40))
			draw.Draw(g, g.Rect, augmenttest.Noise(50, 40, 8), image.Point{}, draw.Src)
			return g
		}(), 21, 21},
	}
	for _, ratio := range subsampleRatios {
		img := noisyYCbCr(101, 77, ratio, int64(ratio)+10)
		cases = append(cases,
			struct {
				name string
				src  image.Image
				w, h int
			}{"ycbcr " + ratio.String(), img, 40, 40},
			struct {
				name string
				src  image.Image
				w, h int
			}{"ycbcr sub-image " + ratio.String(), img.SubImage(image.Rect(7, 5, 90, 70)), 30, 30},
		)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var r resizer
			got := image.NewRGBA(image.Rect(0, 0, c.w, c.h))
			for i := range got.Pix {
				got.Pix[i] = 0x5a // every pixel must be overwritten
			}
			r.resize(got, c.src)
			maxDiff, mean := compareImages(t, got, giftResize(c.src, c.w, c.h))
			if maxDiff > 1 || mean > 0.01 {
				t.Errorf("differs from gift: max %d (limit 1), mean %.4f (limit 0.01)", maxDiff, mean)
			}
			// The reused buffers give the same result again.
			again := image.NewRGBA(got.Rect)
			r.resize(again, c.src)
			if !bytes.Equal(again.Pix, got.Pix) {
				t.Error("a second resize with the same resizer differs from the first")
			}
		})
	}
}

// The taps of each output pixel sum to one and stay inside the source.
func TestAxisFilterTaps(t *testing.T) {
	for _, c := range []struct{ dst, src int }{{150, 533}, {150, 400}, {57, 20}, {32, 32}, {5, 1}, {1, 9}} {
		f := newAxisFilter(c.dst, c.src)
		for i := 0; i < c.dst; i++ {
			w := f.w[f.off[i]:f.off[i+1]]
			if len(w) == 0 {
				t.Fatalf("%d→%d: output %d has no taps", c.src, c.dst, i)
			}
			if f.start[i] < 0 || f.start[i]+len(w) > c.src {
				t.Errorf("%d→%d: output %d reads source %d…%d, outside 0…%d", c.src, c.dst, i, f.start[i], f.start[i]+len(w)-1, c.src-1)
			}
			var sum float64
			for _, x := range w {
				if x < 0 {
					t.Errorf("%d→%d: output %d has a negative weight %g", c.src, c.dst, i, x)
				}
				sum += float64(x)
			}
			if math.Abs(sum-1) > 1e-5 {
				t.Errorf("%d→%d: output %d weights sum to %g", c.src, c.dst, i, sum)
			}
		}
	}
}

func BenchmarkResize(b *testing.B) {
	photo := jpegYCbCr(b, augmenttest.Noise(400, 533, 1))
	dst := image.NewRGBA(image.Rect(0, 0, 150, 150))
	b.Run("resizer/ycbcr-400x533-to-150", func(b *testing.B) {
		var r resizer
		for b.Loop() {
			r.resize(dst, photo)
		}
	})
	b.Run("gift/ycbcr-400x533-to-150", func(b *testing.B) {
		g := gift.New(gift.Resize(150, 150, gift.LinearResampling))
		g.SetParallelization(false)
		for b.Loop() {
			g.Draw(dst, toRGB(photo))
		}
	})
}

// yCbCrRow converts exactly as color.YCbCrToRGB does, for every subsampling.
func TestYCbCrRowMatchesColorPackage(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, ratio := range subsampleRatios {
		img := image.NewYCbCr(image.Rect(0, 0, 37, 9), ratio)
		for _, plane := range [][]uint8{img.Y, img.Cb, img.Cr} {
			for i := range plane {
				plane[i] = uint8(rng.IntN(256))
			}
		}
		sub := img.SubImage(image.Rect(3, 1, 37, 9)).(*image.YCbCr)
		sx, sy, ok := chromaShifts(sub)
		if !ok {
			t.Fatalf("%v: no shifts", ratio)
		}
		var r resizer
		for y := sub.Rect.Min.Y; y < sub.Rect.Max.Y; y++ {
			row := r.yCbCrRow(sub, y, sx, sy)
			for x := sub.Rect.Min.X; x < sub.Rect.Max.X; x++ {
				c := sub.YCbCrAt(x, y)
				wr, wg, wb := color.YCbCrToRGB(c.Y, c.Cb, c.Cr)
				i := (x - sub.Rect.Min.X) * 3
				if got, want := [3]float32{row[i], row[i+1], row[i+2]}, [3]float32{float32(wr), float32(wg), float32(wb)}; got != want {
					t.Fatalf("%v (%d,%d): %v, want %v", ratio, x, y, got, want)
				}
			}
		}
	}
}
