package serve

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzPredictRequest feeds arbitrary bodies to the :predict parser (JSON
// instances and inputs, b64 values, numeric arrays): it must answer an
// error or images within the limits, never panic. Seeds:
// testdata/fuzz/serve-request at the top of the repository.
func FuzzPredictRequest(f *testing.F) {
	seeds, err := filepath.Glob(filepath.Join("..", "..", "testdata", "fuzz", "serve-request", "*"))
	if err != nil || len(seeds) == 0 {
		f.Fatalf("no seed corpus in ../../testdata/fuzz/serve-request: %v", err)
	}
	for _, p := range seeds {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	// A server without a model: parsing never touches it.
	s := &Server{cfg: Config{Name: "kfash", MaxInstances: 4}.withDefaults(), size: 2, classes: serveTestClasses}
	per := s.size * s.size * 3
	f.Fuzz(func(t *testing.T, body []byte) {
		images, _, _, herr := s.parsePredictRequest(body)
		if herr != nil {
			if herr.status < 400 || herr.status > 499 || herr.msg == "" {
				t.Fatalf("error %d %q", herr.status, herr.msg)
			}
			return
		}
		if len(images) == 0 || len(images) > s.cfg.MaxInstances {
			t.Fatalf("%d images accepted (limit %d)", len(images), s.cfg.MaxInstances)
		}
		for i, img := range images {
			if (img.encoded == nil) == (img.pixels == nil) || (img.pixels != nil && len(img.pixels) != per) || (img.encoded != nil && len(img.encoded) == 0) {
				t.Fatalf("image %d: %d pixels, %d bytes", i, len(img.pixels), len(img.encoded))
			}
		}
		// The numeric parser alone, with and without a limit.
		if vals, shape, err := parseNumbersMax(body, 0, 64); err == nil {
			n := 1
			for _, d := range shape {
				n *= d
			}
			if n != len(vals) || len(vals) > 64 {
				t.Fatalf("shape %v for %d values", shape, len(vals))
			}
		}
	})
}
