package augment

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/draw"
	_ "image/gif" // registers GIF with image.Decode (first frame only)
	_ "image/jpeg"
	_ "image/png"
	"io"
	"io/fs"
	"strings"

	_ "golang.org/x/image/bmp"
	_ "golang.org/x/image/webp"
)

// DefaultMaxPixels is the largest image, in pixels (width × height), that is
// decoded when no other limit is set: 50 megapixels. A 50-megapixel RGBA image
// already needs 200 MB, and a few kilobytes of crafted PNG or GIF can claim far
// more (a decompression bomb), so the limit is checked on the header before any
// pixel is decoded.
const DefaultMaxPixels = 50_000_000

// ErrTooLarge is wrapped by the errors of images whose header claims more
// pixels than the decoder's limit.
var ErrTooLarge = errors.New("image too large")

// ErrNotImage is wrapped by the errors of files that are not in one of the
// supported formats (JPEG, PNG, GIF, WebP, BMP).
var ErrNotImage = errors.New("not a supported image (JPEG, PNG, GIF, WebP or BMP)")

// DecodeOptions configures decoding. The zero value is ready to use.
type DecodeOptions struct {
	// MaxPixels rejects images with more than this many pixels before they
	// are decoded; 0 means DefaultMaxPixels.
	MaxPixels int64
}

// DecodeFile decodes the image at path into an opaque RGB image with the
// default options; see [DecodeOptions.DecodeFile].
func DecodeFile(path string) (*image.RGBA, error) {
	return DecodeOptions{}.DecodeFile(path)
}

// DecodeBytes decodes an encoded image held in memory with the default
// options; see [DecodeOptions.DecodeBytes].
func DecodeBytes(data []byte) (*image.RGBA, error) {
	return DecodeOptions{}.DecodeBytes(data)
}

// DecodeFile decodes the image at path (JPEG, PNG, GIF first frame, WebP or
// BMP, recognised by content, not by extension) into an opaque RGB image: the
// result is an *image.RGBA whose alpha is 255 everywhere and whose bounds
// start at (0, 0).
//
// Gray, paletted, CMYK, YCbCr and 16-bit images are converted to 8-bit RGB.
// Transparent and translucent pixels are composited over BLACK: the
// premultiplied RGBA colour of a pixel already is its composite over black,
// so this costs nothing, and black is also what the rotation augmentation
// puts in the corners, so the network sees one colour for "no content".
//
// Errors name the path and the reason, for example
// "augment: /x/y.jpg: truncated JPEG: unexpected EOF".
// A path that is not a regular file (a named pipe, a device) is an error
// wrapping ErrNotRegular, returned at once: it is never read.
func (o DecodeOptions) DecodeFile(path string) (*image.RGBA, error) {
	img, err := o.decodeFileImage(path)
	if err != nil {
		return nil, err
	}
	return toRGB(img), nil
}

// decodeFileImage is DecodeFile returning the decoder's image unconverted
// (see decodeImage), with the same errors.
func (o DecodeOptions) decodeFileImage(path string) (image.Image, error) {
	// Never os.Open: a named pipe put in place of an image would block the
	// worker (and with it the whole run) until a writer appears.
	f, err := openRegular(path)
	if err != nil {
		return nil, fmt.Errorf("augment: %s: cannot read: %w", path, err)
	}
	defer f.Close()
	img, err := o.decodeImage(f)
	if err != nil {
		return nil, fmt.Errorf("augment: %s: %w", path, err)
	}
	return img, nil
}

// DecodeBytes is DecodeFile for an encoded image held in memory; its errors
// name no path.
func (o DecodeOptions) DecodeBytes(data []byte) (*image.RGBA, error) {
	img, err := o.decodeBytesImage(data)
	if err != nil {
		return nil, err
	}
	return toRGB(img), nil
}

// decodeBytesImage is DecodeBytes returning the decoder's image unconverted.
func (o DecodeOptions) decodeBytesImage(data []byte) (image.Image, error) {
	img, err := o.decodeImage(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("augment: %w", err)
	}
	return img, nil
}

// decodeImage reads the header, enforces the pixel limit, then decodes the
// whole image from the start of r. It returns the decoder's own image (a
// JPEG's *image.YCbCr), which the resizer reads directly instead of
// converting every full-size pixel first. Errors carry no "augment:" prefix
// and no path: the callers add them.
func (o DecodeOptions) decodeImage(r io.ReadSeeker) (img image.Image, err error) {
	// The decoders parse untrusted bytes; a bug in one of them must cost
	// the trainer one skipped image, not the whole run.
	defer recoverDecoder(&err)

	br := bufio.NewReader(r)
	cfg, format, err := o.readHeader(br)
	if err != nil {
		return nil, err
	}

	if _, err := r.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("cannot rewind: %w", err)
	}
	br.Reset(r)
	src, _, err := image.Decode(br)
	if err != nil {
		return nil, describeDecodeError(err, formatName(format))
	}
	if b := src.Bounds(); b.Dx() != cfg.Width || b.Dy() != cfg.Height {
		// Cannot happen with the standard decoders; a mismatch would
		// mean the limit above checked the wrong size.
		return nil, fmt.Errorf("%s decoded to %dx%d but its header says %dx%d",
			formatName(format), b.Dx(), b.Dy(), cfg.Width, cfg.Height)
	}
	return src, nil
}

// CheckHeader reads an encoded image's header from r and checks it as
// decoding does before any pixel: a supported format (JPEG, PNG, GIF, WebP
// or BMP, recognised by content) and a non-empty size of at most MaxPixels.
// It decodes no pixel, so it is fast, but an image cut short after its
// header passes; Check finds that too.
//
// The error is the reason alone, for example "truncated JPEG: unexpected
// EOF", with neither a path nor an "augment:" prefix: the caller names the
// file. It wraps ErrNotImage or ErrTooLarge where they apply.
func (o DecodeOptions) CheckHeader(r io.Reader) (err error) {
	defer recoverDecoder(&err)
	_, _, err = o.readHeader(bufio.NewReader(r))
	return err
}

// Check decodes an encoded image held in memory as DecodeBytes does and
// drops the pixels, so that it also finds what CheckHeader cannot, such as
// data that ends early. Errors are reasons alone, as CheckHeader's.
func (o DecodeOptions) Check(data []byte) error {
	_, err := o.decodeImage(bytes.NewReader(data))
	return err
}

// readHeader reads an image header from br and checks it (see CheckHeader).
func (o DecodeOptions) readHeader(br *bufio.Reader) (image.Config, string, error) {
	head, _ := br.Peek(16) // only used to name the format in error messages
	if len(head) == 0 {
		return image.Config{}, "", errors.New("empty file")
	}
	cfg, format, err := image.DecodeConfig(br)
	if err != nil {
		return cfg, format, describeDecodeError(err, sniffFormat(head))
	}
	maxPixels := o.MaxPixels
	if maxPixels <= 0 {
		maxPixels = DefaultMaxPixels
	}
	return cfg, format, checkConfig(cfg, format, maxPixels)
}

// checkConfig checks the size an image header declares: not empty, and at
// most maxPixels, so that a decompression bomb is refused before a decoder
// allocates what it claims.
func checkConfig(cfg image.Config, format string, maxPixels int64) error {
	if cfg.Width <= 0 || cfg.Height <= 0 {
		return fmt.Errorf("empty %s image (%dx%d)", formatName(format), cfg.Width, cfg.Height)
	}
	if pixels := int64(cfg.Width) * int64(cfg.Height); pixels > maxPixels {
		return fmt.Errorf("%w: %s header says %dx%d = %d pixels, more than the limit of %d (not decoded)",
			ErrTooLarge, formatName(format), cfg.Width, cfg.Height, pixels, maxPixels)
	}
	return nil
}

// recoverDecoder turns a panic of a decoder into *err.
func recoverDecoder(err *error) {
	if p := recover(); p != nil {
		*err = fmt.Errorf("decoder failed: %v", p)
	}
}

// toRGB converts any image to an opaque *image.RGBA with bounds at the
// origin. draw.Src stores the premultiplied colour, which is the composite
// over black; forcing alpha to 255 then makes it opaque RGB.
func toRGB(src image.Image) *image.RGBA {
	b := src.Bounds()
	dst := image.NewRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
	draw.Draw(dst, dst.Bounds(), src, b.Min, draw.Src)
	switch src.(type) {
	case *image.YCbCr, *image.Gray, *image.Gray16, *image.CMYK:
		// These models have no alpha: draw already wrote 255.
	default:
		for i := 3; i < len(dst.Pix); i += 4 {
			dst.Pix[i] = 0xff
		}
	}
	return dst
}

// describeDecodeError turns a decoder error into a reason a person can act
// on, keeping the original error wrapped for errors.Is.
func describeDecodeError(err error, format string) error {
	switch {
	case errors.Is(err, image.ErrFormat):
		return fmt.Errorf("%w", ErrNotImage)
	case isTruncation(err):
		if format == "" {
			return fmt.Errorf("empty or truncated file: %w", err)
		}
		return fmt.Errorf("truncated %s: %w", format, err)
	case format == "":
		return fmt.Errorf("corrupt image: %w", err)
	default:
		return fmt.Errorf("corrupt %s: %w", format, err)
	}
}

// isTruncation reports whether a decoder error means the data ended early.
// Not every decoder wraps io.ErrUnexpectedEOF: image/jpeg turns it into
// "short Huffman data", image/png into "not enough pixel data", and
// image/gif formats it with %v, so the messages are matched too.
func isTruncation(err error) bool {
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return true
	}
	msg := err.Error()
	for _, m := range [...]string{"unexpected EOF", "short Huffman data", "not enough pixel data"} {
		if strings.Contains(msg, m) {
			return true
		}
	}
	return false
}

// sniffFormat names the format announced by the first bytes of a file, so
// that a header too broken for image.DecodeConfig still gets a useful error.
func sniffFormat(head []byte) string {
	switch {
	case bytes.HasPrefix(head, []byte("\xff\xd8")):
		return "JPEG"
	case bytes.HasPrefix(head, []byte("\x89PNG\r\n\x1a\n")):
		return "PNG"
	case bytes.HasPrefix(head, []byte("GIF8")):
		return "GIF"
	case len(head) >= 12 && bytes.HasPrefix(head, []byte("RIFF")) && string(head[8:12]) == "WEBP":
		return "WebP"
	case bytes.HasPrefix(head, []byte("BM")):
		return "BMP"
	}
	return ""
}

// formatName spells the name image.Decode reports the way people write it.
func formatName(format string) string {
	switch format {
	case "jpeg":
		return "JPEG"
	case "png":
		return "PNG"
	case "gif":
		return "GIF"
	case "webp":
		return "WebP"
	case "bmp":
		return "BMP"
	}
	return format
}

// unwrapPathError drops the *fs.PathError wrapper, whose message repeats the
// path that the caller already names.
func unwrapPathError(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
