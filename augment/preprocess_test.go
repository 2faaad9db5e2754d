package augment

import (
	"image"
	"image/color"
	"math"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestResize(t *testing.T) {
	// Left half red, right half blue, 40×20: stretching to a square must
	// keep the halves (no crop) and fill the whole frame (no padding).
	src := image.NewRGBA(image.Rect(0, 0, 40, 20))
	for y := 0; y < 20; y++ {
		for x := 0; x < 40; x++ {
			c := color.RGBA{255, 0, 0, 255}
			if x >= 20 {
				c = color.RGBA{0, 0, 255, 255}
			}
			src.SetRGBA(x, y, c)
		}
	}
	tests := []struct {
		size int
	}{{8}, {16}, {33}, {40}}
	for _, tt := range tests {
		got, err := Resize(src, tt.size)
		if err != nil {
			t.Fatal(err)
		}
		if got.Bounds() != image.Rect(0, 0, tt.size, tt.size) {
			t.Fatalf("Resize(%d) bounds = %v", tt.size, got.Bounds())
		}
		for _, y := range []int{0, tt.size - 1} {
			if c := rgbAt(got, 0, y); c != [3]uint8{255, 0, 0} {
				t.Errorf("Resize(%d) left edge (0,%d) = %v, want red", tt.size, y, c)
			}
			if c := rgbAt(got, tt.size-1, y); c != [3]uint8{0, 0, 255} {
				t.Errorf("Resize(%d) right edge (%d,%d) = %v, want blue", tt.size, tt.size-1, y, c)
			}
		}
	}
	if _, err := Resize(src, 0); err == nil {
		t.Error("Resize(0) succeeded")
	}
}

func TestToFloat32(t *testing.T) {
	img := image.NewRGBA(image.Rect(0, 0, 2, 2))
	img.SetRGBA(0, 0, color.RGBA{1, 2, 3, 255})
	img.SetRGBA(1, 0, color.RGBA{4, 5, 6, 255})
	img.SetRGBA(0, 1, color.RGBA{7, 8, 9, 255})
	img.SetRGBA(1, 1, color.RGBA{10, 11, 255, 255})
	got := make([]float32, 12)
	if err := ToFloat32(img, got); err != nil {
		t.Fatal(err)
	}
	want := []float32{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 255} // HWC: row 0 then row 1
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ToFloat32 = %v, want %v", got, want)
	}
	// A sub-image (non-zero origin, stride wider than the row).
	sub := img.SubImage(image.Rect(1, 0, 2, 2)).(*image.RGBA)
	got = make([]float32, 6)
	if err := ToFloat32(sub, got); err != nil {
		t.Fatal(err)
	}
	if want := []float32{4, 5, 6, 10, 11, 255}; !reflect.DeepEqual(got, want) {
		t.Errorf("ToFloat32(sub-image) = %v, want %v", got, want)
	}
	if err := ToFloat32(img, make([]float32, 11)); err == nil || !strings.Contains(err.Error(), "needs 12") {
		t.Errorf("ToFloat32 with a short buffer: err = %v", err)
	}
}

func TestPreprocessFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.png")
	writeImage(t, path, patternImage(30, 20, 2))
	got, err := PreprocessFile(path, 12)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 12*12*3 {
		t.Fatalf("len = %d, want %d", len(got), 12*12*3)
	}
	for _, v := range got {
		if v < 0 || v > 255 || v != float32(math.Trunc(float64(v))) {
			t.Fatalf("value %v is not an integer in 0–255", v)
		}
	}
	if _, err := PreprocessFile(filepath.Join(t.TempDir(), "none.png"), 12); err == nil {
		t.Error("PreprocessFile on a missing file succeeded")
	}
}

func TestParseNormalize(t *testing.T) {
	tests := []struct {
		in      string
		want    Normalize
		wantErr bool
	}{
		{"none", NormalizeNone, false},
		{"unit", NormalizeUnit, false},
		{" ImageNet ", NormalizeImageNet, false},
		{"", "", true},
		{"zscore", "", true},
	}
	for _, tt := range tests {
		got, err := ParseNormalize(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseNormalize(%q) = %q, %v; want %q, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestNormalize(t *testing.T) {
	tests := []struct {
		n    Normalize
		in   []float32
		want []float32
	}{
		{NormalizeNone, []float32{0, 128, 255}, []float32{0, 128, 255}},
		{NormalizeUnit, []float32{0, 127.5, 255, 51, 0, 255}, []float32{0, 0.5, 1, 0.2, 0, 1}},
		{NormalizeImageNet,
			[]float32{123.675, 116.28, 103.53, 255 * (0.485 + 0.229), 255 * (0.456 - 0.224), 255 * (0.406 + 2*0.225)},
			[]float32{0, 0, 0, 1, -1, 2}},
	}
	for _, tt := range tests {
		t.Run(string(tt.n), func(t *testing.T) {
			buf := append([]float32(nil), tt.in...)
			tt.n.Apply(buf)
			for i := range buf {
				if math.Abs(float64(buf[i]-tt.want[i])) > 1e-5 {
					t.Fatalf("Apply(%v) = %v, want %v", tt.in, buf, tt.want)
				}
			}
		})
	}
	mean, std := NormalizeImageNet.MeanStd()
	wantMean := [3]float64{0.485, 0.456, 0.406}
	wantStd := [3]float64{0.229, 0.224, 0.225}
	for c := 0; c < 3; c++ {
		if math.Abs(float64(mean[c])-255*wantMean[c]) > 1e-4 || math.Abs(float64(std[c])-255*wantStd[c]) > 1e-4 {
			t.Errorf("ImageNet channel %d: mean %v std %v, want 255×%v and 255×%v", c, mean[c], std[c], wantMean[c], wantStd[c])
		}
	}
}
