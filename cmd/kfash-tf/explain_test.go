package main

import (
	"encoding/json"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func decodePNG(t *testing.T, path string) image.Image {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return img
}

// explain writes an overlay, a 16-bit map and its sidecar per photo, and
// words a bad photo, class, layer or model in terms of what to give instead.
func TestExplainWritesMapsAndExplainsMistakes(t *testing.T) {
	runDir, data := tinyRun(t)
	photos, err := filepath.Glob(filepath.Join(data, "Validation", "*", "*"))
	if err != nil || len(photos) < 2 {
		t.Fatalf("no validation photos: %v", err)
	}
	photos = photos[:2]
	outDir := filepath.Join(t.TempDir(), "heat")
	stdout := mustRun(t, "explain", runDir, photos[0], photos[1], "--out", outDir, "--class", "stripe")
	for _, p := range photos {
		base := filepath.Join(outDir, strings.TrimSuffix(filepath.Base(p), filepath.Ext(p)))
		if !strings.Contains(stdout, base+".explain.png") {
			t.Errorf("output does not name %s.explain.png:\n%s", base, stdout)
		}
		overlay := decodePNG(t, base+".explain.png").Bounds()
		// vgg8's input is 150×150; the overlay is scaled to 320 wide with a
		// legend strip below.
		if overlay.Dx() != 320 || overlay.Dy() <= 320 {
			t.Errorf("%s.explain.png is %v, want 320 wide and taller (the legend)", base, overlay)
		}
		m := decodePNG(t, base+".map.png")
		g, ok := m.(*image.Gray16)
		if !ok || m.Bounds().Dx() != 150 || m.Bounds().Dy() != 150 {
			t.Fatalf("%s.map.png is %T %v, want 150×150 16-bit gray", base, m, m.Bounds())
		}
		var lo, hi uint16 = 65535, 0
		for y := 0; y < 150; y++ {
			for x := 0; x < 150; x++ {
				v := g.Gray16At(x, y).Y
				lo, hi = min(lo, v), max(hi, v)
			}
		}
		raw, err := os.ReadFile(base + ".map.json")
		if err != nil {
			t.Fatal(err)
		}
		var side struct {
			File, Network, Layer, Class, Predicted string
			Probability                            *float64
			Min, Max                               *float64
			Size                                   int
		}
		if err := json.Unmarshal(raw, &side); err != nil {
			t.Fatalf("%s.map.json: %v", base, err)
		}
		if side.Network != "vgg8" || side.Layer != "block4/conv2" || side.Class != "stripe" || side.File != p ||
			side.Probability == nil || *side.Probability < 0 || *side.Probability > 1 || side.Min == nil || side.Max == nil || side.Size != 150 {
			t.Errorf("%s.map.json = %s", base, raw)
		}
		// A map with evidence spans [0,1]; a flat one (max 0) is all 0.
		if *side.Max > 0 && (lo != 0 || hi != 65535) {
			t.Errorf("%s.map.png spans [%d,%d] of 65535, want [0,65535]", base, lo, hi)
		}
	}

	// The layer flag names a row of `models show`; the map keeps its size.
	mustRun(t, "explain", runDir, photos[0], "--out", outDir, "--layer", "block3/conv2")
	if side, _ := os.ReadFile(filepath.Join(outDir, strings.TrimSuffix(filepath.Base(photos[0]), filepath.Ext(photos[0]))+".map.json")); !strings.Contains(string(side), `"block3/conv2"`) {
		t.Errorf("--layer block3/conv2 not in the sidecar: %s", side)
	}

	bad := filepath.Join(t.TempDir(), "bad.jpg")
	if err := os.WriteFile(bad, []byte("not an image"), 0o644); err != nil {
		t.Fatal(err)
	}
	fresh := filepath.Join(t.TempDir(), "none")
	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"--class", "Retro"}, []string{`--class "Retro"`, "circle, square, stripe"}},
		{[]string{"--layer", "fc"}, []string{`--layer "fc"`, "block1/conv1", "block4/conv2"}},
		{[]string{"--layer", "nope"}, []string{`--layer "nope"`, "block4/conv2"}},
	} {
		args := append([]string{"explain", runDir, photos[0], "--out", fresh}, c.args...)
		_, stderr, code := run(t, args...)
		if code == 0 {
			t.Errorf("%v: exit 0", c.args)
		}
		for _, w := range c.want {
			if !strings.Contains(stderr, w) {
				t.Errorf("%v: stderr lacks %q:\n%s", c.args, w, stderr)
			}
		}
	}
	_, stderr, code := run(t, "explain", runDir, photos[0], bad, "--out", fresh)
	if code == 0 || !strings.Contains(stderr, bad) {
		t.Errorf("a bad photo: exit %d, stderr does not name it:\n%s", code, stderr)
	}
	if _, err := os.Stat(fresh); !os.IsNotExist(err) {
		t.Errorf("a failed explain left %s behind (%v)", fresh, err)
	}

	// An export explains with its explain signature, at the layer fixed
	// at export; another layer needs the run.
	exportDir := filepath.Join(t.TempDir(), "export")
	mustRun(t, "export", runDir, "--out", exportDir)
	fromExport := filepath.Join(t.TempDir(), "from-export")
	if _, stderr, code = run(t, "explain", exportDir, photos[0], "--out", fromExport); code != 0 {
		t.Errorf("explain of an export: exit %d:\n%s", code, stderr)
	} else if m, _ := filepath.Glob(filepath.Join(fromExport, "*.map.json")); len(m) != 1 {
		t.Errorf("explain of an export wrote %v, want one map", m)
	}
	_, stderr, code = run(t, "explain", exportDir, photos[0], "--out", fresh, "--layer", "block3/conv2")
	if code == 0 || !strings.Contains(stderr, "fixed at export") {
		t.Errorf("explain of an export at another layer: exit %d:\n%s", code, stderr)
	}
}

func TestExplainHelpTeaches(t *testing.T) {
	stdout, stderr, code := run(t, "explain", "--help")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{"kfash-tf explain runs/cs3 photo.jpg --out heat/", "--class", "--layer", ".map.png", "models show"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("help lacks %q:\n%s", want, stdout)
		}
	}
}

// `models show` marks the network's Grad-CAM layer in its table and names it
// below.
func TestModelsShowMarksCAMLayer(t *testing.T) {
	stdout, stderr, code := run(t, "models", "show", "vgg8")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var marked []string
	for _, l := range strings.Split(stdout, "\n") {
		if f := strings.Fields(l); len(f) > 1 && f[1] == "*" {
			marked = append(marked, f[0])
		}
	}
	if len(marked) != 1 || marked[0] != "block4/conv2" {
		t.Errorf("marked rows %v, want [block4/conv2]:\n%s", marked, stdout)
	}
	if !strings.Contains(stdout, "Grad-CAM layer        block4/conv2") {
		t.Errorf("no Grad-CAM line naming block4/conv2:\n%s", stdout)
	}
}
