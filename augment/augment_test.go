package augment

import (
	"bytes"
	"image"
	"image/color"
	"testing"
)

func TestParseMode(t *testing.T) {
	tests := []struct {
		in      string
		want    Mode
		wantErr bool
	}{
		{"none", ModeNone, false},
		{"", ModeNone, false},
		{"Online", ModeOnline, false},
		{" double ", ModeDouble, false},
		{"offline", "", true},
	}
	for _, tt := range tests {
		got, err := ParseMode(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseMode(%q) = %q, %v; want %q, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestFlipHorizontalIsExactMirror(t *testing.T) {
	for _, size := range []image.Point{{13, 7}, {16, 16}, {1, 5}} {
		src := patternImage(size.X, size.Y, 4)
		got := FlipHorizontal(src)
		if got.Bounds() != src.Bounds() {
			t.Fatalf("%v: bounds %v", size, got.Bounds())
		}
		for y := 0; y < size.Y; y++ {
			for x := 0; x < size.X; x++ {
				if g, w := got.RGBAAt(x, y), src.RGBAAt(size.X-1-x, y); g != w {
					t.Fatalf("%v: flip(%d,%d) = %v, want src(%d,%d) = %v", size, x, y, g, size.X-1-x, y, w)
				}
			}
		}
	}
}

func TestRotate(t *testing.T) {
	white := func(w, h int) *image.RGBA {
		m := image.NewRGBA(image.Rect(0, 0, w, h))
		for i := range m.Pix {
			m.Pix[i] = 255
		}
		return m
	}
	tests := []struct {
		w, h  int
		angle float32
	}{
		{64, 64, 30}, {64, 64, -30}, {150, 150, 30}, {63, 50, 30}, {224, 224, -17.5},
	}
	for _, tt := range tests {
		src := white(tt.w, tt.h)
		got := Rotate(src, tt.angle)
		if got.Bounds() != src.Bounds() {
			t.Fatalf("Rotate(%dx%d, %v) bounds = %v, want the original size", tt.w, tt.h, tt.angle, got.Bounds())
		}
		corners := []image.Point{{0, 0}, {tt.w - 1, 0}, {0, tt.h - 1}, {tt.w - 1, tt.h - 1}}
		for _, p := range corners {
			if c := got.RGBAAt(p.X, p.Y); c != (color.RGBA{0, 0, 0, 255}) {
				t.Errorf("Rotate(%dx%d, %v) corner %v = %v, want opaque black", tt.w, tt.h, tt.angle, p, c)
			}
		}
		if c := rgbAt(got, tt.w/2, tt.h/2); c != [3]uint8{255, 255, 255} {
			t.Errorf("Rotate(%dx%d, %v) centre = %v, want white", tt.w, tt.h, tt.angle, c)
		}
	}
	// A zero rotation changes nothing.
	src := patternImage(21, 17, 5)
	if got := Rotate(src, 0); !bytes.Equal(got.Pix, src.Pix) {
		t.Error("Rotate(0) changed the image")
	}
}

// TestRotateDirection pins the documented sense: positive angles turn the
// image counter-clockwise as displayed (y down).
func TestRotateDirection(t *testing.T) {
	const n = 31
	src := image.NewRGBA(image.Rect(0, 0, n, n))
	for x := n/2 + 5; x < n; x++ { // a bright bar to the right of the centre
		src.SetRGBA(x, n/2, color.RGBA{255, 255, 255, 255})
	}
	got := Rotate(src, 90)
	if c := rgbAt(got, n/2, n/2-10); c[0] < 200 {
		t.Errorf("after +90°, the bar should be above the centre; pixel there = %v", c)
	}
	if c := rgbAt(got, n/2+10, n/2); c[0] > 50 {
		t.Errorf("after +90°, the bar should have left the right; pixel there = %v", c)
	}
}

func TestTransformDraws(t *testing.T) {
	const draws = 3000
	counts := map[Op]int{}
	for i := 0; i < draws; i++ {
		tf := onlineTransform(newRNG(7, streamOnline, 1, i))
		counts[tf.Op]++
		if tf.Op == OpRotate && (tf.Angle < -MaxRotation || tf.Angle > MaxRotation) {
			t.Fatalf("online angle %v outside ±%d", tf.Angle, MaxRotation)
		}
		if tf.Op != OpRotate && tf.Angle != 0 {
			t.Fatalf("%v has an angle", tf)
		}
		c := copyTransform(newRNG(7, streamCopy, 0, i))
		if c.Op == OpIdentity {
			t.Fatal("a ModeDouble copy must not be the identity")
		}
	}
	// The study's doubled epoch: half originals, a quarter flips, a quarter rotations.
	for op, want := range map[Op]float64{OpIdentity: 0.5, OpFlip: 0.25, OpRotate: 0.25} {
		if frac := float64(counts[op]) / draws; frac < want-0.04 || frac > want+0.04 {
			t.Errorf("online %v drawn %.3f of the time, want about %.2f", Transform{Op: op}, frac, want)
		}
	}
}
