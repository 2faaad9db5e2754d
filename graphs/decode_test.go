package graphs

import (
	"bytes"
	"image"
	"image/color/palette"
	"image/draw"
	"image/gif"
	"image/jpeg"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	tf "github.com/galeone/tensorflow/tensorflow/go"
	"github.com/galeone/tensorflow/tensorflow/go/op"
	"golang.org/x/image/bmp"

	"github.com/kfash-tf/kfash-tf/augment"
	"github.com/kfash-tf/kfash-tf/augment/augmenttest"
	"github.com/kfash-tf/kfash-tf/graphs/runs"
)

// decoder is a graph holding only the in-graph decoder, run in Go.
type decoder struct {
	sess    *tf.Session
	encoded tf.Output
	out     tf.Output
	size    int
}

func newDecoder(t testing.TB, size int) *decoder {
	t.Helper()
	g := tf.NewGraph()
	s := op.NewScopeWithGraph(g)
	encoded := op.Placeholder(s.SubScope("image_bytes"), tf.String, op.PlaceholderShape(tf.MakeShape(-1)))
	out, err := DecodeImages(g, "decode", encoded, size)
	if err != nil {
		t.Fatal(err)
	}
	if got := out.Shape(); got.String() != tf.MakeShape(-1, int64(size), int64(size), 3).String() {
		t.Errorf("decoder output shape %v, want [?,%d,%d,3]", got, size, size)
	}
	sess, err := NewSession(g, runs.SessionConfig{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sess.Close() })
	return &decoder{sess: sess, encoded: encoded, out: out, size: size}
}

// decode runs the graph on the encoded images and returns the batch.
func (d *decoder) decode(files [][]byte) ([]float32, error) {
	strs := make([]string, len(files))
	for i, f := range files {
		strs[i] = string(f)
	}
	in, err := tf.NewTensor(strs)
	if err != nil {
		return nil, err
	}
	res, err := d.sess.Run(map[tf.Output]*tf.Tensor{d.encoded: in}, []tf.Output{d.out}, nil)
	if err != nil {
		return nil, err
	}
	flat := make([]float32, 0, len(files)*d.size*d.size*3)
	for _, img := range res[0].Value().([][][][]float32) {
		for _, row := range img {
			for _, px := range row {
				flat = append(flat, px...)
			}
		}
	}
	return flat, nil
}

// goPixels is what the training pipeline feeds the network for an
// encoded image: augment's decode, augment.Resize, HWC floats.
func goPixels(t testing.TB, file []byte, size int) []float32 {
	t.Helper()
	img, err := augment.DecodeBytes(file)
	if err != nil {
		t.Fatal(err)
	}
	small, err := augment.Resize(img, size)
	if err != nil {
		t.Fatal(err)
	}
	px := make([]float32, size*size*3)
	if err := augment.ToFloat32(small, px); err != nil {
		t.Fatal(err)
	}
	return px
}

// diffStats returns the largest and the mean absolute difference.
func diffStats(a, b []float32) (maxDiff, mean float64) {
	for i := range a {
		d := math.Abs(float64(a[i] - b[i]))
		maxDiff = math.Max(maxDiff, d)
		mean += d
	}
	return maxDiff, mean / float64(len(a))
}

func encodeImage(t testing.TB, format string, img image.Image) []byte {
	t.Helper()
	var buf bytes.Buffer
	var err error
	switch format {
	case "png":
		err = png.Encode(&buf, img)
	case "jpeg":
		err = jpeg.Encode(&buf, img, &jpeg.Options{Quality: 90})
	case "gif":
		err = gif.Encode(&buf, img, &gif.Options{NumColors: 256})
	case "animated-gif":
		// Three frames; decoders keep the first.
		var frames []*image.Paletted
		for k := 0; k < 3; k++ {
			p := image.NewPaletted(img.Bounds(), palette.Plan9)
			draw.Draw(p, p.Bounds(), img, image.Point{}, draw.Src)
			img = augmenttest.Noise(img.Bounds().Dx(), img.Bounds().Dy(), int64(100+k))
			frames = append(frames, p)
		}
		err = gif.EncodeAll(&buf, &gif.GIF{Image: frames, Delay: []int{10, 10, 10}})
	case "bmp":
		err = bmp.Encode(&buf, img)
	}
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// A batch of images of different sizes and formats decodes to what the Go
// pipeline makes of them: exactly (up to one level where float rounding
// lands on .5) for lossless files, within the small JPEG decoder differences
// (libjpeg-turbo vs image/jpeg) for JPEG.
func TestDecodeImagesMatchesGoPipeline(t *testing.T) {
	const size = 32
	cases := []struct {
		name, format string
		w, h         int
		maxDiff      float64 // per pixel value, 0–255
		maxMean      float64
	}{
		{"png 40x30 (downscale)", "png", 40, 30, 1, 0.01},
		{"jpeg 97x61 (downscale)", "jpeg", 97, 61, 4, 0.5},
		{"png 200x8 (down and up)", "png", 200, 8, 1, 0.01},
		{"gif 20x20 (upscale)", "gif", 20, 20, 1, 0.01},
		{"png 32x32 (same size)", "png", 32, 32, 0, 0},
		{"animated gif 20x20 (first frame)", "animated-gif", 20, 20, 1, 0.01},
		{"bmp 20x13", "bmp", 20, 13, 1, 0.01},
	}
	d := newDecoder(t, size)
	var files [][]byte
	for i, c := range cases {
		files = append(files, encodeImage(t, c.format, augmenttest.Noise(c.w, c.h, int64(i))))
	}
	got, err := d.decode(files)
	if err != nil {
		t.Fatal(err)
	}
	n := size * size * 3
	if len(got) != len(files)*n {
		t.Fatalf("decoded %d values, want %d", len(got), len(files)*n)
	}
	for i, c := range cases {
		want := goPixels(t, files[i], size)
		maxDiff, mean := diffStats(got[i*n:(i+1)*n], want)
		t.Logf("%s: max |TF - Go| = %g, mean %.4f", c.name, maxDiff, mean)
		if maxDiff > c.maxDiff || mean > c.maxMean {
			t.Errorf("%s: TF decode+resize differs from the Go pipeline: max %g (limit %g), mean %.4f (limit %g)",
				c.name, maxDiff, c.maxDiff, mean, c.maxMean)
		}
	}

	// An empty batch is a [0,S,S,3] batch, not an error.
	if got, err := d.decode(nil); err != nil || len(got) != 0 {
		t.Errorf("empty batch: %d values, %v", len(got), err)
	}
	// A file that is no image fails the run with TensorFlow's reason.
	if _, err := d.decode([][]byte{files[0], []byte("not an image")}); err == nil || !strings.Contains(err.Error(), "image") {
		t.Errorf("bad image: got %v, want an error about the image format", err)
	}
}

// The resize of the in-graph decoder against augment.Resize on real photos
// (../shared/data/clothing-small, skipped where absent). "resize only"
// feeds TF a lossless PNG of Go's decoded image, isolating the filters;
// "JPEG end to end" lets TF decode the JPEG itself (libjpeg-turbo, whose
// IDCT and chroma upsampling differ from image/jpeg's).
func TestDecodeResizeRealPhotos(t *testing.T) {
	root := filepath.Join("..", "..", "shared", "data", "clothing-small")
	var paths []string
	filepath.WalkDir(root, func(p string, e os.DirEntry, err error) error {
		if err == nil && !e.IsDir() && strings.HasSuffix(strings.ToLower(p), ".jpg") {
			paths = append(paths, p)
		}
		return nil
	})
	if len(paths) == 0 {
		t.Skipf("real-photo comparison skipped: no JPEG under %s (the shared clothing-small dataset lives beside the repository)", root)
	}
	sort.Strings(paths)
	// A spread of the dataset, every class folder likely among them.
	const want = 12
	var picked []string
	for i := 0; i < want && i < len(paths); i++ {
		picked = append(picked, paths[i*len(paths)/want])
	}
	for _, size := range []int{150, 227} {
		d := newDecoder(t, size)
		var jpegs, pngs [][]byte
		for _, p := range picked {
			raw, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			img, err := augment.DecodeBytes(raw)
			if err != nil {
				t.Fatalf("%s: %v", p, err)
			}
			jpegs = append(jpegs, raw)
			pngs = append(pngs, encodeImage(t, "png", img))
		}
		n := size * size * 3
		for _, variant := range []struct {
			name           string
			files          [][]byte
			maxDiff, limit float64
		}{
			{"resize only (PNG of Go's decode)", pngs, 1, 0.01},
			{"JPEG end to end", jpegs, 4, 0.5},
		} {
			got, err := d.decode(variant.files)
			if err != nil {
				t.Fatal(err)
			}
			var worst, meanSum float64
			for i := range variant.files {
				m, mean := diffStats(got[i*n:(i+1)*n], goPixels(t, jpegs[i], size))
				worst = math.Max(worst, m)
				meanSum += mean
			}
			mean := meanSum / float64(len(variant.files))
			t.Logf("size %d, %s, %d photos: max |TF - Go| = %g, mean %.4f", size, variant.name, len(variant.files), worst, mean)
			if worst > variant.maxDiff || mean > variant.limit {
				t.Errorf("size %d, %s: max %g (limit %g), mean %.4f (limit %g)", size, variant.name, worst, variant.maxDiff, mean, variant.limit)
			}
		}
	}
}
