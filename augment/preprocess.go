package augment

import (
	"fmt"
	"image"

	"github.com/disintegration/gift"
)

// Resize stretches img to size×size with bilinear resampling
// (gift.LinearResampling). It neither crops nor preserves the aspect ratio,
// like the seed study's loader, so the whole garment stays in the frame.
func Resize(img image.Image, size int) (*image.RGBA, error) {
	if size <= 0 {
		return nil, fmt.Errorf("augment: resize: size must be positive, got %d", size)
	}
	dst := image.NewRGBA(image.Rect(0, 0, size, size))
	resizeInto(dst, img)
	return dst, nil
}

// resizeInto stretches src to the bounds of dst, overwriting every pixel of
// dst (so dst may be reused between images).
func resizeInto(dst *image.RGBA, src image.Image) {
	b := dst.Bounds()
	g := gift.New(gift.Resize(b.Dx(), b.Dy(), gift.LinearResampling))
	// The loader already runs one image per core; gift's own goroutines
	// would only add scheduling overhead.
	g.SetParallelization(false)
	g.Draw(dst, src)
}

// ToFloat32 writes the RGB values of img, 0–255, into dst in HWC order (row
// by row, pixel by pixel, R G B); alpha is dropped. dst must hold exactly
// width × height × 3 values.
func ToFloat32(img *image.RGBA, dst []float32) error {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	if len(dst) != w*h*3 {
		return fmt.Errorf("augment: a %dx%d image needs %d float32 values, got a buffer of %d", w, h, w*h*3, len(dst))
	}
	toFloat32(img, dst)
	return nil
}

// toFloat32 is ToFloat32 without the size check, for buffers the loader sized.
func toFloat32(img *image.RGBA, dst []float32) {
	b := img.Bounds()
	w := b.Dx()
	o := 0
	for y := b.Min.Y; y < b.Max.Y; y++ {
		row := img.Pix[img.PixOffset(b.Min.X, y):]
		row = row[: w*4 : w*4]
		for x := 0; x < len(row); x += 4 {
			dst[o] = float32(row[x])
			dst[o+1] = float32(row[x+1])
			dst[o+2] = float32(row[x+2])
			o += 3
		}
	}
}

// PreprocessFile decodes the image at path, stretches it to size×size and
// returns its pixels as float32 HWC RGB values in 0–255: exactly what the
// loader feeds the network for an unaugmented image, for prediction.
func PreprocessFile(path string, size int) ([]float32, error) {
	img, err := DecodeFile(path)
	if err != nil {
		return nil, err
	}
	resized, err := Resize(img, size)
	if err != nil {
		return nil, err
	}
	out := make([]float32, size*size*3)
	toFloat32(resized, out)
	return out, nil
}
