package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"image/png"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// The report's gallery on a trained run: the mistakes and right answers it
// shows are the ones evaluate counts, each with an overlay inlined in
// index.html and written for report.md.
func TestReportGalleryShowsMistakesWithMaps(t *testing.T) {
	runDir, data := tinyRun(t)
	stdout, stderr, code := run(t, "evaluate", runDir, "--data", data, "--format", "json")
	if code != 0 {
		t.Fatalf("evaluate: exit %d: %s", code, stderr)
	}
	var ev struct {
		ConfusionMatrix [][]int64 `json:"confusion_matrix"`
	}
	if err := json.Unmarshal([]byte(stdout), &ev); err != nil {
		t.Fatal(err)
	}
	const wrongMax = 3
	var mistakes, wantRight int
	for i, row := range ev.ConfusionMatrix {
		for j, n := range row {
			if i != j {
				mistakes += int(n)
			}
		}
		wantRight += min(2, int(row[i]))
	}
	wantWrong := min(wrongMax, mistakes)

	// No --data: the gallery reads the dataset config.json records.
	outDir := filepath.Join(t.TempDir(), "rep")
	mustRun(t, "report", runDir, "--out", outDir, "--gallery", "3")
	raw, err := os.ReadFile(filepath.Join(outDir, "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	var rows []struct {
		Gallery *struct {
			Layer        string
			Wrong, Right []struct {
				File, True, Predicted string
				Probability           float64
			}
		}
	}
	if err := json.Unmarshal(raw, &rows); err != nil || len(rows) != 1 || rows[0].Gallery == nil {
		t.Fatalf("report.json has no gallery (%v):\n%s", err, raw)
	}
	g := rows[0].Gallery
	if len(g.Wrong) != wantWrong || len(g.Right) != wantRight || g.Layer != "block4/conv2" {
		t.Fatalf("gallery has %d mistakes and %d right answers at %q; evaluate's confusion matrix %v wants %d and %d at block4/conv2",
			len(g.Wrong), len(g.Right), g.Layer, ev.ConfusionMatrix, wantWrong, wantRight)
	}
	for i, w := range g.Wrong {
		if w.True == w.Predicted || (i > 0 && w.Probability > g.Wrong[i-1].Probability) || !strings.HasPrefix(w.File, data) {
			t.Errorf("mistake %d %+v: want a wrong answer from %s, most confident first", i, w, data)
		}
	}
	for _, r := range g.Right {
		if r.True != r.Predicted {
			t.Errorf("right answer %+v is wrong", r)
		}
	}

	page, err := os.ReadFile(filepath.Join(outDir, "index.html"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(page, []byte("Validation gallery")) {
		t.Fatal("index.html has no gallery section")
	}
	imgs := regexp.MustCompile(`<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"`).FindAllSubmatch(page, -1)
	if len(imgs) != wantWrong+wantRight {
		t.Fatalf("index.html inlines %d overlays, want %d", len(imgs), wantWrong+wantRight)
	}
	for _, m := range imgs {
		b, err := base64.StdEncoding.DecodeString(string(m[1]))
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(bytes.NewReader(b))
		if err != nil || img.Bounds().Dx() != 320 || img.Bounds().Dy() <= 320 {
			t.Fatalf("inlined overlay: %v, %v; want explain's 320-wide overlay with a legend", err, img)
		}
	}
	md, err := os.ReadFile(filepath.Join(outDir, "report.md"))
	if err != nil {
		t.Fatal(err)
	}
	files := regexp.MustCompile(`\]\((runs/[^)]+/gallery/[^)]+\.png)\)`).FindAllSubmatch(md, -1)
	if len(files) != wantWrong+wantRight {
		t.Fatalf("report.md links %d gallery images, want %d:\n%s", len(files), wantWrong+wantRight, md)
	}
	for _, f := range files {
		if _, err := os.Stat(filepath.Join(outDir, string(f[1]))); err != nil {
			t.Errorf("report.md links a missing image: %v", err)
		}
	}

	// --no-gallery leaves it out; a dataset that is gone is a note, not a failure.
	plain := filepath.Join(t.TempDir(), "plain")
	mustRun(t, "report", runDir, "--out", plain, "--no-gallery")
	if page, _ := os.ReadFile(filepath.Join(plain, "index.html")); bytes.Contains(page, []byte("Validation gallery")) {
		t.Error("--no-gallery: index.html still has a gallery")
	}
	gone := filepath.Join(t.TempDir(), "gone")
	mustRun(t, "report", runDir, "--out", gone, "--data", filepath.Join(data, "missing"))
	if page, _ := os.ReadFile(filepath.Join(gone, "index.html")); !bytes.Contains(page, []byte("No gallery:")) {
		t.Error("a missing dataset: index.html does not say why there is no gallery")
	}
}
