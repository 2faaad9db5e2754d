// Package augmenttest writes small generated image datasets for tests:
// each class has its own colour and stripe direction (plus noise), so a
// network can learn them in a few steps.
package augmenttest

import (
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math/rand"
	"os"
	"path/filepath"
)

// Spec describes a generated dataset.
type Spec struct {
	Classes  []string       // class folder names
	PerClass map[string]int // images per class for each split folder ("Train", "Validation", ...)
	Size     int            // image side in pixels (images are square)
	Seed     int64
}

// Write creates dir/<split>/<class>/NNN.png for every split in spec.PerClass.
func Write(dir string, spec Spec) error {
	rng := rand.New(rand.NewSource(spec.Seed))
	for split, n := range spec.PerClass {
		for c, class := range spec.Classes {
			folder := filepath.Join(dir, split, class)
			if err := os.MkdirAll(folder, 0o755); err != nil {
				return err
			}
			for i := 0; i < n; i++ {
				img := Image(c, spec.Size, rng)
				if err := writePNG(filepath.Join(folder, fmt.Sprintf("%03d.png", i)), img); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// Image draws one example of class c: stripes whose colour and direction
// depend on the class, with a random phase and pixel noise.
func Image(c, size int, rng *rand.Rand) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, size, size))
	base := [3]uint8{}
	base[c%3] = 200
	period := 4 + c%5
	phase := rng.Intn(period)
	for y := 0; y < size; y++ {
		for x := 0; x < size; x++ {
			t := x
			if c%2 == 1 {
				t = y
			}
			on := (t+phase)/(period/2+1)%2 == 0
			var px [3]uint8
			for k := 0; k < 3; k++ {
				v := int(base[k])/3 + rng.Intn(40)
				if on {
					v += int(base[k]) / 2
				}
				px[k] = uint8(min(v, 255))
			}
			img.SetRGBA(x, y, color.RGBA{px[0], px[1], px[2], 255})
		}
	}
	return img
}

func writePNG(path string, img image.Image) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := png.Encode(f, img); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
