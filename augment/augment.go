package augment

import (
	"fmt"
	"image"
	"image/color"
	"math/rand/v2"
	"strings"

	"github.com/disintegration/gift"
)

// Mode is how the loader augments training images. Augmentation is applied
// AFTER the image is stretched to the network's size: rotating and flipping
// a 150×150 image is several times cheaper than doing it on the 400×533
// original, and the cached (pre-augmentation) images stay small. The cost
// is that rotation interpolates the already-downsampled pixels, which is
// what a Keras-style pipeline does too.
type Mode string

// Augmentation modes.
const (
	// ModeNone feeds every image unchanged (evaluation, validation).
	ModeNone Mode = "none"
	// ModeOnline transforms every image afresh each epoch with the
	// distribution of an epoch of the study's doubling: unchanged with
	// probability 1/2, else a horizontal flip or a rotation (1/4 each, the
	// angle uniform in [-MaxRotation, MaxRotation]). The choice depends only
	// on (seed, epoch, sample index).
	ModeOnline Mode = "online"
	// ModeDouble is the seed study's offline doubling: an epoch is every
	// original image plus one augmented copy of each, the copy being a
	// horizontal flip or a rotation (half each, angle uniform in
	// [-MaxRotation, MaxRotation]) fixed by (seed, sample index) and so
	// identical in every epoch.
	ModeDouble Mode = "double"
)

// MaxRotation is the largest rotation, in degrees either way, that the
// augmentation modes draw.
const MaxRotation = 30

// ParseMode parses "none", "online" or "double" (any letter case); the
// empty string is ModeNone.
func ParseMode(s string) (Mode, error) {
	m := Mode(strings.ToLower(strings.TrimSpace(s)))
	if m == "" {
		return ModeNone, nil
	}
	if err := m.Validate(); err != nil {
		return "", err
	}
	return m, nil
}

// Validate returns an error unless m is one of the Mode constants.
func (m Mode) Validate() error {
	switch m {
	case ModeNone, ModeOnline, ModeDouble:
		return nil
	}
	return fmt.Errorf("augment: unknown augmentation mode %q (want none, online or double)", string(m))
}

// Op is one geometric transform.
type Op int

// Transforms.
const (
	// OpIdentity leaves the image unchanged.
	OpIdentity Op = iota
	// OpFlip mirrors the image left to right.
	OpFlip
	// OpRotate rotates the image by Transform.Angle.
	OpRotate
)

// Transform is one augmentation applied to one image.
type Transform struct {
	Op Op
	// Angle is the rotation in degrees, counter-clockwise, for OpRotate.
	Angle float32
}

// String describes t, for logs and test failures.
func (t Transform) String() string {
	switch t.Op {
	case OpIdentity:
		return "identity"
	case OpFlip:
		return "flip"
	case OpRotate:
		return fmt.Sprintf("rotate(%.2f°)", t.Angle)
	}
	return fmt.Sprintf("Op(%d)", int(t.Op))
}

// Apply returns img transformed by t, as a new image of the same size; the
// identity returns img itself.
func (t Transform) Apply(img *image.RGBA) *image.RGBA {
	if t.Op != OpFlip && t.Op != OpRotate {
		return img
	}
	dst := image.NewRGBA(image.Rect(0, 0, img.Bounds().Dx(), img.Bounds().Dy()))
	t.applyInto(dst, img)
	return dst
}

// FlipHorizontal returns img mirrored left to right (gift.FlipHorizontal).
func FlipHorizontal(img *image.RGBA) *image.RGBA {
	return Transform{Op: OpFlip}.Apply(img)
}

// Rotate returns img rotated by angle degrees counter-clockwise about its
// centre, keeping its size: gift.Rotate draws the whole rotated image on a
// larger canvas, which is cropped back to the original width × height around
// its centre, so the corners uncovered by the rotation are black and the
// parts rotated outside the frame are lost, as in the seed study. When the
// canvas and the image differ in size by an odd number of pixels the crop
// cannot be exactly centred, and the result is shifted by half a pixel.
func Rotate(img *image.RGBA, angle float32) *image.RGBA {
	return Transform{Op: OpRotate, Angle: angle}.Apply(img)
}

// applyInto draws src transformed by t into dst, which has the size of src
// and whose every pixel is overwritten (so dst may be reused). For the
// identity it copies.
func (t Transform) applyInto(dst, src *image.RGBA) {
	b := src.Bounds()
	var g *gift.GIFT
	switch t.Op {
	case OpFlip:
		g = gift.New(gift.FlipHorizontal())
	case OpRotate:
		g = gift.New(
			gift.Rotate(t.Angle, color.Black, gift.LinearInterpolation),
			gift.CropToSize(b.Dx(), b.Dy(), gift.CenterAnchor),
		)
	default:
		g = gift.New()
	}
	// One image per worker already keeps every core busy.
	g.SetParallelization(false)
	g.Draw(dst, src)
}

// onlineTransform draws the ModeOnline transform with the distribution an
// epoch of the study's doubling has: the original half of the time, else a
// flip or a rotation (a quarter each).
func onlineTransform(rng *rand.Rand) Transform {
	if rng.IntN(2) == 0 {
		return Transform{Op: OpIdentity}
	}
	return copyTransform(rng)
}

// copyTransform draws the transform of a ModeDouble copy: flip or rotation
// with probability 1/2 each (never the identity, which would duplicate the
// original).
func copyTransform(rng *rand.Rand) Transform {
	if rng.IntN(2) == 0 {
		return Transform{Op: OpFlip}
	}
	return Transform{Op: OpRotate, Angle: randomAngle(rng)}
}

// randomAngle is uniform in [-MaxRotation, MaxRotation).
func randomAngle(rng *rand.Rand) float32 {
	return float32((rng.Float64()*2 - 1) * MaxRotation)
}
