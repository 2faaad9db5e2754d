package augment

import (
	"fmt"
	"image"
)

// Resize stretches img to size×size, an opaque RGB image, with the
// antialiased bilinear filter of gift.LinearResampling (see resize.go). It
// neither crops nor preserves the aspect ratio, like the seed study's
// loader, so the whole garment stays in the frame. Translucent pixels count
// as their composite over black, as DecodeFile makes them.
func Resize(img image.Image, size int) (*image.RGBA, error) {
	if size <= 0 {
		return nil, fmt.Errorf("augment: resize: size must be positive, got %d", size)
	}
	if b := img.Bounds(); b.Empty() {
		return nil, fmt.Errorf("augment: resize: empty image (%dx%d)", b.Dx(), b.Dy())
	}
	dst := image.NewRGBA(image.Rect(0, 0, size, size))
	var r resizer
	r.resize(dst, img)
	return dst, nil
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
	img, err := DecodeOptions{}.decodeFileImage(path)
	if err != nil {
		return nil, err
	}
	out := make([]float32, size*size*3)
	return out, preprocessInto(img, size, out)
}

// PreprocessBytes is PreprocessFile for an encoded image held in memory,
// with o's limits, writing the size×size×3 values into dst (so a server
// can decode an upload straight into its batch).
func (o DecodeOptions) PreprocessBytes(data []byte, size int, dst []float32) error {
	img, err := o.decodeBytesImage(data)
	if err != nil {
		return err
	}
	return preprocessInto(img, size, dst)
}

func preprocessInto(img image.Image, size int, dst []float32) error {
	resized, err := Resize(img, size)
	if err != nil {
		return err
	}
	return ToFloat32(resized, dst)
}
