package augment

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"image"
)

// DefaultMaxGIFFrames is the most frames a GIF may have when no other limit
// is set. Only the first frame is ever used, but decoders read them all:
// TensorFlow's DecodeImage (giflib's DGifSlurp) decompresses every frame
// into memory even with expand_animations=false. 100 covers real product
// animations; more is a way to multiply a small file's decoding cost.
const DefaultMaxGIFFrames = 100

// ErrTooManyFrames is wrapped by the errors of GIFs with more frames than
// ImageLimits.MaxFrames. It wraps ErrTooLarge.
var ErrTooManyFrames = fmt.Errorf("%w: too many GIF frames", ErrTooLarge)

// ImageLimits bounds what decoding an encoded image may cost, checked on
// its headers without decoding a pixel. The zero value uses the defaults.
type ImageLimits struct {
	// MaxPixels bounds width × height, and for a GIF the sum of its frames'
	// areas (every frame is decompressed); 0 means DefaultMaxPixels.
	MaxPixels int64
	// MaxFrames bounds a GIF's frames; 0 means DefaultMaxGIFFrames.
	MaxFrames int
}

// ImageInfo is what ImageLimits.Check read from an image's headers.
type ImageInfo struct {
	Format        string // as the image package names it: "jpeg", "png", "gif", "webp", "bmp"
	Width, Height int    // the (logical screen) size the header declares
	Frames        int    // 1, or a GIF's image descriptors
	// Pixels is what a decoder may produce: Width × Height, or for a GIF
	// the larger of that and the sum of its frames' areas.
	Pixels int64
}

// Check reads the headers of an encoded image (for a GIF, every block
// header: a streaming scan that skips the compressed data) and checks them
// against l. Errors wrap ErrNotImage for an unknown format and ErrTooLarge
// (ErrTooManyFrames) for an image over a limit; a GIF frame that lies
// outside the logical screen is refused as malformed, as Go's decoder does.
// Truncated data is left for the decoder to report.
func (l ImageLimits) Check(data []byte) (ImageInfo, error) {
	maxPixels, maxFrames := l.MaxPixels, l.MaxFrames
	if maxPixels <= 0 {
		maxPixels = DefaultMaxPixels
	}
	if maxFrames <= 0 {
		maxFrames = DefaultMaxGIFFrames
	}
	if len(data) == 0 {
		return ImageInfo{}, errors.New("empty image")
	}
	cfg, format, err := image.DecodeConfig(bytes.NewReader(data))
	if errors.Is(err, image.ErrFormat) {
		return ImageInfo{}, ErrNotImage
	}
	if err != nil {
		return ImageInfo{}, fmt.Errorf("unreadable image header: %w", err)
	}
	info := ImageInfo{Format: format, Width: cfg.Width, Height: cfg.Height, Frames: 1}
	if err := checkConfig(cfg, format, maxPixels); err != nil {
		if errors.Is(err, ErrTooLarge) {
			info.Pixels = int64(cfg.Width) * int64(cfg.Height)
		}
		return info, err
	}
	info.Pixels = int64(cfg.Width) * int64(cfg.Height)
	if format != "gif" {
		return info, nil
	}
	frames, framePixels, err := scanGIF(data, maxPixels, maxFrames)
	info.Frames = frames
	info.Pixels = max(info.Pixels, framePixels)
	return info, err
}

// gifScanner walks a GIF's blocks: header, logical screen, then extensions
// and image descriptors, each followed by data sub-blocks it skips.
type gifScanner struct {
	data []byte
	pos  int
}

// errTruncated stops a scan at the end of the data: not an error of the
// check (the decoder reports truncation with its own words).
var errTruncated = errors.New("truncated")

func (s *gifScanner) next(n int) ([]byte, error) {
	if n > len(s.data)-s.pos {
		return nil, errTruncated
	}
	b := s.data[s.pos : s.pos+n]
	s.pos += n
	return b, nil
}

// skipSubBlocks skips data sub-blocks (a length byte, then that many
// bytes) up to the zero-length terminator.
func (s *gifScanner) skipSubBlocks() error {
	for {
		n, err := s.next(1)
		if err != nil {
			return err
		}
		if n[0] == 0 {
			return nil
		}
		if _, err := s.next(int(n[0])); err != nil {
			return err
		}
	}
}

// colorTableLen is the size in bytes of the colour table a packed field
// announces (0 when its flag is clear).
func colorTableLen(packed byte) int {
	if packed&0x80 == 0 {
		return 0
	}
	return 3 << ((packed & 7) + 1)
}

// scanGIF counts the frames of a GIF and sums their areas, checking each
// frame against the logical screen and the running totals against the
// limits as it goes, so that a hostile file stops the scan early.
func scanGIF(data []byte, maxPixels int64, maxFrames int) (frames int, pixels int64, err error) {
	s := &gifScanner{data: data}
	defer func() {
		if errors.Is(err, errTruncated) {
			err = nil
		}
	}()
	head, err := s.next(13) // "GIF8?a", then the logical screen descriptor
	if err != nil {
		return 0, 0, err
	}
	screenW, screenH := int(binary.LittleEndian.Uint16(head[6:])), int(binary.LittleEndian.Uint16(head[8:]))
	if _, err := s.next(colorTableLen(head[10])); err != nil {
		return 0, 0, err
	}
	for {
		b, err := s.next(1)
		if err != nil {
			return frames, pixels, err
		}
		switch b[0] {
		case 0x21: // extension: a label, then sub-blocks
			if _, err := s.next(1); err != nil {
				return frames, pixels, err
			}
			if err := s.skipSubBlocks(); err != nil {
				return frames, pixels, err
			}
		case 0x2C: // image descriptor
			d, err := s.next(9)
			if err != nil {
				return frames, pixels, err
			}
			frames++
			if frames > maxFrames {
				return frames, pixels, fmt.Errorf("%w: the GIF has more than %d frames (not decoded)", ErrTooManyFrames, maxFrames)
			}
			left, top := int(binary.LittleEndian.Uint16(d[0:])), int(binary.LittleEndian.Uint16(d[2:]))
			w, h := int(binary.LittleEndian.Uint16(d[4:])), int(binary.LittleEndian.Uint16(d[6:]))
			if left+w > screenW || top+h > screenH {
				return frames, pixels, fmt.Errorf("GIF frame %d (%dx%d at %d,%d) lies outside the %dx%d logical screen its header declares",
					frames-1, w, h, left, top, screenW, screenH)
			}
			pixels += int64(w) * int64(h)
			if pixels > maxPixels {
				return frames, pixels, fmt.Errorf("%w: the GIF's %d frames hold %d pixels, more than the limit of %d (not decoded)",
					ErrTooLarge, frames, pixels, maxPixels)
			}
			if _, err := s.next(colorTableLen(d[8]) + 1); err != nil { // local colour table, LZW code size
				return frames, pixels, err
			}
			if err := s.skipSubBlocks(); err != nil {
				return frames, pixels, err
			}
		case 0x3B: // trailer
			return frames, pixels, nil
		default:
			return frames, pixels, fmt.Errorf("malformed GIF: unknown block 0x%02x at byte %d", b[0], s.pos-1)
		}
	}
}
