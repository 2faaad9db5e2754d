package report

import (
	"bytes"
	"encoding/json"
	"errors"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// A gallery handed in as plain data is inlined in index.html (nothing
// fetched), written as files for report.md, listed without its images in
// report.json; a failure to compute one is the run's note.
func TestGalleryInReport(t *testing.T) {
	root := writeStudy(t)
	found, err := Find([]string{root})
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := png.Encode(&b, image.NewGray(image.Rect(0, 0, 4, 4))); err != nil {
		t.Fatal(err)
	}
	pic := b.Bytes()
	asked := map[string]bool{}
	gallery := func(r *Run) (*Gallery, error) {
		asked[r.Name] = true
		switch r.Name {
		case "c-best":
			return &Gallery{Layer: "block4/conv2",
				Wrong: []GalleryImage{{File: "v/retro/1.jpg", True: "retro", Predicted: "sporty", Probability: 0.97, PNG: pic}},
				Right: []GalleryImage{{File: "v/resort/2.jpg", True: "resort", Predicted: "resort", Probability: 0.9, PNG: pic},
					{File: "v/sporty/3.jpg", True: "sporty", Predicted: "sporty", Probability: 0.8, PNG: pic}}}, nil
		case "b-loss":
			return nil, errors.New("dataset gone")
		}
		return nil, nil
	}
	rep := Build(found, Options{Network: fakeNetworks, Gallery: gallery})
	if asked["f-corrupt"] || !asked["a-tie"] {
		t.Errorf("gallery asked for %v: want every run with a config, not the corrupt one", asked)
	}
	out := t.TempDir()
	w, err := Write(rep, out, Formats{HTML: true, Markdown: true, JSON: true})
	if err != nil {
		t.Fatal(err)
	}
	if w.Gallery != 3 {
		t.Errorf("Gallery = %d files, want 3", w.Gallery)
	}
	page := readString(t, w.HTML)
	if refs := externalRefs(page); len(refs) > 0 {
		t.Errorf("index.html refers outside itself: %q", refs)
	}
	if n := strings.Count(page, `<img src="data:image/png;base64,iVBORw0KGgo`); n != 3 {
		t.Errorf("index.html inlines %d PNGs, want 3", n)
	}
	for _, want := range []string{"true retro · predicted sporty 97.0%", "Grad-CAM at block4/conv2", "No gallery: dataset gone"} {
		if !strings.Contains(page, want) {
			t.Errorf("index.html lacks %q", want)
		}
	}
	md := readString(t, w.Markdown)
	links := regexp.MustCompile(`\]\((runs/c-best/gallery/[a-z]+-\d\.png)\)`).FindAllStringSubmatch(md, -1)
	if len(links) != 3 {
		t.Fatalf("report.md links %d gallery images, want 3:\n%s", len(links), md)
	}
	for _, l := range links {
		if got, err := os.ReadFile(filepath.Join(out, l[1])); err != nil || !bytes.Equal(got, pic) {
			t.Errorf("%s: %v", l[1], err)
		}
	}
	var rows []struct {
		Name    string
		Gallery map[string]json.RawMessage
	}
	raw := readString(t, w.JSON)
	if err := json.Unmarshal([]byte(raw), &rows); err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		if (r.Gallery != nil) != (r.Name == "c-best" || r.Name == "b-loss") {
			t.Errorf("report.json: %s's gallery is %v", r.Name, r.Gallery)
		}
	}
	if strings.Contains(raw, "iVBORw0KGgo") || !strings.Contains(raw, `"predicted": "sporty"`) {
		t.Error("report.json should list the gallery's images without their PNGs")
	}
}
