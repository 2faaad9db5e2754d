package augmenttest

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"math/rand"
)

// PNG encodes a generated image of class c (see Image).
func PNG(c, size int, seed int64) []byte {
	var buf bytes.Buffer
	png.Encode(&buf, Image(c, size, rand.New(rand.NewSource(seed)))) // writing to memory cannot fail
	return buf.Bytes()
}

// JPEG encodes a generated image of class c at quality 90.
func JPEG(c, size int, seed int64) []byte {
	var buf bytes.Buffer
	jpeg.Encode(&buf, Image(c, size, rand.New(rand.NewSource(seed))), &jpeg.Options{Quality: 90})
	return buf.Bytes()
}

// PNGBomb is the start of a width×height 8-bit gray PNG: a valid signature
// and IHDR, then a token IDAT. It is what a decompression bomb looks like
// to a header check; only a decoder that trusts the header would try to
// allocate the pixels.
func PNGBomb(width, height uint32) []byte {
	var b bytes.Buffer
	b.WriteString("\x89PNG\r\n\x1a\n")
	chunk := func(kind string, data []byte) {
		binary.Write(&b, binary.BigEndian, uint32(len(data)))
		crc := crc32.NewIEEE()
		crc.Write([]byte(kind))
		crc.Write(data)
		b.WriteString(kind)
		b.Write(data)
		binary.Write(&b, binary.BigEndian, crc.Sum32())
	}
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr[0:], width)
	binary.BigEndian.PutUint32(ihdr[4:], height)
	ihdr[8] = 8 // bit depth; colour type 0 (gray), compression, filter, interlace 0
	chunk("IHDR", ihdr)
	chunk("IDAT", []byte{0x78, 0x9c, 0x62, 0x60})
	return b.Bytes()
}

// Noise is a w×h opaque image of smooth gradients plus noise, the same for
// the same seed: enough detail for a resampling filter to matter, for
// tests that compare two implementations of one.
func Noise(w, h int, seed int64) *image.RGBA {
	rng := rand.New(rand.NewSource(seed))
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			img.SetRGBA(x, y, color.RGBA{
				R: uint8(x*200/w + rng.Intn(56)),
				G: uint8(y*200/h + rng.Intn(56)),
				B: uint8(rng.Intn(256)),
				A: 255,
			})
		}
	}
	return img
}
