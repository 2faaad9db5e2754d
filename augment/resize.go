package augment

import (
	"image"
	"math"
)

// The resize is the loader's hottest step after JPEG decoding, so it has its
// own code instead of gift.Resize, computing the same filter: gift's
// LinearResampling (a triangle filter widened by the downscale factor, so it
// antialiases, pixel centres at +0.5, weights renormalised at the borders),
// which the exported SavedModel's in-graph decoder also reproduces
// (TensorFlow's ScaleAndTranslate, kernel "triangle", antialias).
//
// gift reads every pixel through a generic getter into float32 RGBA,
// writes the horizontal pass to a 16-bit NRGBA64 image and reads it back,
// and needs the JPEG's YCbCr converted to a full-size RGBA first. Here the
// YCbCr rows are converted as they are filtered (the same integer
// conversion image/draw uses, chroma by replication), the intermediate stays
// float32 in a buffer the loader's workers reuse, and the inner loops touch
// only slices. A 400×533 JPEG's YCbCr to 150×150: 1.8 ms against gift's
// 5.6 ms with the conversion (BenchmarkResize); the loader on the
// clothing-small photos, 150 px, 2 workers: 427 images/s against 300
// (BenchmarkLoader). The result matches gift to one level (float rounding
// at .5): TestResizeMatchesGift.

// axisFilter holds the taps of the triangle filter along one axis: output i
// is the weighted sum of source pixels start[i] … start[i]+len(taps)-1 with
// weights w[off[i]:off[i+1]].
type axisFilter struct {
	start []int
	off   []int
	w     []float32
}

// newAxisFilter computes the taps that map src pixels onto dst pixels,
// as gift's prepareResampWeights does for LinearResampling (in float32, so
// the weights are the same numbers).
func newAxisFilter(dst, src int) axisFilter {
	delta := float32(src) / float32(dst)
	scale := max(delta, 1)
	radius := float32(math.Ceil(float64(scale))) // the triangle's support is 1
	f := axisFilter{start: make([]int, dst), off: make([]int, dst+1)}
	f.w = make([]float32, 0, dst*(2*int(radius)+2))
	for i := 0; i < dst; i++ {
		center := (float32(i)+0.5)*delta - 0.5
		left := max(int(math.Ceil(float64(center-radius))), 0)
		right := min(int(math.Floor(float64(center+radius))), src-1)
		first := len(f.w)
		var sum float32
		for j := left; j <= right; j++ {
			x := (float32(j) - center) / scale
			if x < 0 {
				x = -x
			}
			w := float32(0)
			if x < 1 {
				w = 1 - x
			}
			if w == 0 && len(f.w) == first {
				left = j + 1 // drop leading zero taps; trailing ones cost a multiply each
				continue
			}
			f.w = append(f.w, w)
			sum += w
		}
		for k := first; k < len(f.w); k++ {
			f.w[k] /= sum
		}
		f.start[i] = left
		f.off[i+1] = len(f.w)
	}
	return f
}

// resizer resizes images with the triangle filter; its buffers are reused
// from one image to the next, so a loader worker allocates them once.
type resizer struct {
	row []float32 // one source row as RGB floats
	mid []float32 // the horizontal pass: source height × width × 3
	acc []float32 // one output row of the vertical pass
}

// resize stretches src to the bounds of dst (which must start at the
// origin), overwriting every pixel of dst; dst's alpha is set to 255.
// YCbCr images (JPEG) are read directly; *image.RGBA is read ignoring
// alpha, so a translucent pixel counts as its premultiplied colour, its
// composite over black; any other image is first converted with toRGB.
func (r *resizer) resize(dst *image.RGBA, src image.Image) {
	switch s := src.(type) {
	case *image.YCbCr:
		if sx, sy, ok := chromaShifts(s); ok {
			b := s.Rect
			r.run(dst, b.Dx(), b.Dy(), func(y int) []float32 {
				return r.yCbCrRow(s, b.Min.Y+y, sx, sy)
			})
			return
		}
		r.resizeRGBA(dst, toRGB(src))
	case *image.RGBA:
		r.resizeRGBA(dst, s)
	default:
		r.resizeRGBA(dst, toRGB(src))
	}
}

func (r *resizer) resizeRGBA(dst, src *image.RGBA) {
	b := src.Rect
	w := b.Dx()
	r.run(dst, w, b.Dy(), func(y int) []float32 {
		i := src.PixOffset(b.Min.X, b.Min.Y+y)
		pix := src.Pix[i : i+4*w]
		r.row = grow(r.row, 3*w)
		out := r.row
		for x := 0; x < w; x++ {
			p, o := pix[x*4:x*4+3], out[x*3:x*3+3]
			o[0], o[1], o[2] = float32(p[0]), float32(p[1]), float32(p[2])
		}
		return out
	})
}

// run does the two passes: row(y) returns source row y (0-based) as RGB
// floats, 3 per pixel (converted once, though the taps of neighbouring
// output pixels overlap). Rows are filtered horizontally as
// they are read, into r.mid; the vertical pass then sums whole rows of
// r.mid, which keeps both inner loops on contiguous memory.
func (r *resizer) run(dst *image.RGBA, srcW, srcH int, row func(y int) []float32) {
	dstW, dstH := dst.Rect.Dx(), dst.Rect.Dy()
	fx := newAxisFilter(dstW, srcW)
	fy := newAxisFilter(dstH, srcH)
	rowLen := dstW * 3
	r.mid = grow(r.mid, srcH*rowLen)
	r.acc = grow(r.acc, rowLen)

	for y := 0; y < srcH; y++ {
		src := row(y)
		out := r.mid[y*rowLen : (y+1)*rowLen]
		for i := 0; i < dstW; i++ {
			w := fx.w[fx.off[i]:fx.off[i+1]]
			p := src[fx.start[i]*3:]
			var cr, cg, cb float32
			for k, wk := range w {
				q := p[k*3 : k*3+3]
				cr += wk * q[0]
				cg += wk * q[1]
				cb += wk * q[2]
			}
			o := out[i*3 : i*3+3]
			o[0], o[1], o[2] = cr, cg, cb
		}
	}

	acc := r.acc
	for y := 0; y < dstH; y++ {
		clear(acc)
		for k, wk := range fy.w[fy.off[y]:fy.off[y+1]] {
			sy := fy.start[y] + k
			in := r.mid[sy*rowLen : (sy+1)*rowLen]
			for x := range acc {
				acc[x] += wk * in[x]
			}
		}
		i := dst.PixOffset(dst.Rect.Min.X, dst.Rect.Min.Y+y)
		pix := dst.Pix[i : i+dstW*4]
		for x := 0; x < dstW; x++ {
			p := pix[x*4 : x*4+4]
			a := acc[x*3 : x*3+3]
			p[0], p[1], p[2], p[3] = roundU8(a[0]), roundU8(a[1]), roundU8(a[2]), 0xff
		}
	}
}

// yCbCrRow converts row y of img to RGB in r.row, each chroma sample
// replicated over the pixels it covers, with the integer arithmetic of
// color.YCbCrToRGB (inlined here: the call was a third of the resize):
// what image/draw does when it converts a YCbCr image to RGBA.
func (r *resizer) yCbCrRow(img *image.YCbCr, y int, sx, sy uint) []float32 {
	b := img.Rect
	w := b.Dx()
	r.row = grow(r.row, 3*w)
	out := r.row
	yi := img.YOffset(b.Min.X, y)
	ys := img.Y[yi : yi+w]
	cBase := ((y >> sy) - (b.Min.Y >> sy)) * img.CStride
	cMin := b.Min.X >> sx
	for x, yy := range ys {
		ci := cBase + ((b.Min.X + x) >> sx) - cMin
		yy1 := int32(yy) * 0x10101
		cb1 := int32(img.Cb[ci]) - 128
		cr1 := int32(img.Cr[ci]) - 128
		o := out[x*3 : x*3+3]
		o[0] = clampYCbCr(yy1 + 91881*cr1)
		o[1] = clampYCbCr(yy1 - 22554*cb1 - 46802*cr1)
		o[2] = clampYCbCr(yy1 + 116130*cb1)
	}
	return out
}

// clampYCbCr finishes one channel of color.YCbCrToRGB: v is the value in
// 16.16 fixed point, clamped to 0–255 with the same bit trick.
func clampYCbCr(v int32) float32 {
	if uint32(v)&0xff000000 == 0 {
		return float32(v >> 16)
	}
	return float32(uint8(^(v >> 31)))
}

// chromaShifts returns the horizontal and vertical chroma subsampling of
// img as shifts (x >> sx is the chroma column of pixel column x). ok is
// false for ratios the shifts cannot express or for negative origins,
// where shifting and image.YCbCr's division round differently.
func chromaShifts(img *image.YCbCr) (sx, sy uint, ok bool) {
	if img.Rect.Min.X < 0 || img.Rect.Min.Y < 0 {
		return 0, 0, false
	}
	switch img.SubsampleRatio {
	case image.YCbCrSubsampleRatio444:
		return 0, 0, true
	case image.YCbCrSubsampleRatio422:
		return 1, 0, true
	case image.YCbCrSubsampleRatio420:
		return 1, 1, true
	case image.YCbCrSubsampleRatio440:
		return 0, 1, true
	case image.YCbCrSubsampleRatio411:
		return 2, 0, true
	case image.YCbCrSubsampleRatio410:
		return 2, 1, true
	}
	return 0, 0, false
}

// roundU8 rounds half up and clamps to 0–255, as gift stores 8-bit values.
func roundU8(v float32) uint8 {
	x := int32(v + 0.5)
	switch {
	case x > 255:
		return 255
	case x < 0:
		return 0
	}
	return uint8(x)
}

// grow returns s resliced to n elements, reallocating only when its
// capacity is too small; the contents are not preserved.
func grow[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	return s[:n]
}
