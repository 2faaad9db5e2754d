package report

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"image/png"
	"io"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestWriteAll(t *testing.T) {
	root := writeStudy(t)
	// An evaluation of one run on the validation split is shown with it.
	eval := `{"checkpoint":"best","epoch":2,"split":"validation","classes":["resort","retro","sporty"],"examples":30,
		"accuracy":0.7,"loss":0.8,"macro_f1":0.69,"confusion_matrix":[[7,3,0],[0,7,3],[3,0,7]]}`
	if err := os.WriteFile(filepath.Join(root, "a-tie", "evaluation-validation.json"), []byte(eval), 0o644); err != nil {
		t.Fatal(err)
	}
	found, err := Find([]string{root})
	if err != nil {
		t.Fatal(err)
	}
	rep := Build(found, Options{Network: fakeNetworks, Generated: time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)})
	out := filepath.Join(t.TempDir(), "nested", "report")
	w, err := Write(rep, out, Formats{HTML: true, Markdown: true, JSON: true})
	if err != nil {
		t.Fatal(err)
	}
	if w.HTML != filepath.Join(out, "index.html") || w.Markdown == "" || w.JSON == "" {
		t.Errorf("written %+v", w)
	}

	// Every run with metrics has its curves; runs with a recorded confusion
	// matrix have it; the one-epoch failed run is drawn too.
	want := []string{"comparison", "runs/a-tie/accuracy", "runs/a-tie/loss", "runs/a-tie/confusion", "runs/a-tie/confusion-validation",
		"runs/b-loss/confusion", "runs/d-failed/accuracy", "runs/d-failed/loss", "runs/d-failed/confusion",
		"runs/e-running/accuracy", "runs/g-garbage/loss", "runs/f-corrupt/accuracy"}
	for _, name := range want {
		checkPNG(t, filepath.Join(out, name+".png"))
		checkSVG(t, filepath.Join(out, name+".svg"))
	}
	for _, absent := range []string{"runs/h-empty/accuracy.png", "runs/g-garbage/confusion.png"} {
		if _, err := os.Stat(filepath.Join(out, absent)); err == nil {
			t.Errorf("%s drawn for a run without the data", absent)
		}
	}
	if w.Figures != countFiles(t, out, ".png")+countFiles(t, out, ".svg") {
		t.Errorf("Figures = %d, files on disk differ", w.Figures)
	}

	page := readString(t, w.HTML)
	if refs := externalRefs(page); len(refs) > 0 {
		t.Errorf("index.html refers outside itself: %q", refs)
	}
	for _, want := range []string{
		`<tr class="best"><td data-v="c-best"><a href="#run-c-best">★ c-best</a>`, // the best run marked
		"2 / 4",                          // a-tie's selected epoch of 4
		"non-finite loss NaN at step 12", // the failed run's error
		`<span class="badge corrupt">corrupt</span>`,
		"running (2/10)",
		"lines 2 and 4 unreadable",
		"no confusion matrix recorded",
		"Evaluation on the validation split",
		"<script>", "<svg", "Validation accuracy per epoch",
	} {
		if !strings.Contains(strings.ToLower(page), strings.ToLower(want)) {
			t.Errorf("index.html lacks %q", want)
		}
	}
	if n := strings.Count(page, `<tr class="best">`); n != 1 {
		t.Errorf("%d rows marked best in the HTML table", n)
	}
	checkInlineSVGs(t, page)

	md := readString(t, w.Markdown)
	for _, want := range []string{"| **★ c-best** |", "| a-tie | alexnet | 64 | Adam | 1e-4 | 1e-4 | 0.4 | 2 / 4 | 75.00 | 70.00 |",
		"![Validation accuracy per epoch](comparison.png)", "runs/d-failed/accuracy.png", "| macro avg |"} {
		if !strings.Contains(md, want) {
			t.Errorf("report.md lacks %q", want)
		}
	}
	var rows []Row
	if err := json.Unmarshal([]byte(readString(t, w.JSON)), &rows); err != nil || len(rows) != len(rep.Runs) {
		t.Errorf("report.json: %v, %d rows", err, len(rows))
	}
	// Atomic writes leave no temporary file behind.
	if n := countFiles(t, out, ".tmp"); n != 0 {
		t.Errorf("%d temporary files left", n)
	}
}

func checkPNG(t *testing.T, path string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Error(err)
		return
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Errorf("%s: %v", path, err)
		return
	}
	if b := img.Bounds(); b.Dx() < 300 || b.Dy() < 200 {
		t.Errorf("%s: %v is too small", path, b)
	}
}

func checkSVG(t *testing.T, path string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Error(err)
		return
	}
	if err := svgRoot(data); err != nil {
		t.Errorf("%s: %v", path, err)
	}
}

// svgRoot parses data as XML and checks its root is an SVG <svg> element.
func svgRoot(data []byte) error {
	dec := xml.NewDecoder(bytes.NewReader(data))
	root := ""
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("not XML: %w", err)
		}
		if se, ok := tok.(xml.StartElement); ok && root == "" {
			if se.Name.Local != "svg" || se.Name.Space != "http://www.w3.org/2000/svg" {
				return fmt.Errorf("root element %v, want svg", se.Name)
			}
			root = se.Name.Local
		}
	}
	if root == "" {
		return fmt.Errorf("no root element")
	}
	return nil
}

// checkInlineSVGs checks that every SVG inlined in the page is well-formed.
func checkInlineSVGs(t *testing.T, page string) {
	t.Helper()
	n := 0
	for rest := page; ; {
		i := strings.Index(rest, "<svg")
		if i < 0 {
			break
		}
		j := strings.Index(rest[i:], "</svg>")
		if j < 0 {
			t.Fatal("unterminated inline <svg>")
		}
		if err := svgRoot([]byte(rest[i : i+j+len("</svg>")])); err != nil {
			t.Errorf("inline svg %d: %v", n, err)
		}
		rest = rest[i+j:]
		n++
	}
	if n == 0 {
		t.Error("no inline svg")
	}
}

// The namespace declarations an SVG needs: names, never fetched.
var allowedNamespaces = map[string]bool{"http://www.w3.org/2000/svg": true, "http://www.w3.org/1999/xlink": true}

var (
	namespaceRE = regexp.MustCompile(`\sxmlns(?::[\w-]+)?\s*=\s*"([^"]*)"`)
	// Attributes whose value a browser loads or navigates to.
	fetchAttrRE = regexp.MustCompile(`(?i)\s(src|href|xlink:href|action|formaction|poster|srcset|data|background|manifest)\s*=\s*("[^"]*"|'[^']*'|[^\s>]+)`)
	schemeRE    = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9+.-]*:`)
)

// externalRefs returns what in page would be fetched from elsewhere: a
// src/href with a scheme or a protocol-relative //host, a CSS url() or
// @import, or any http(s):// text other than an SVG namespace declaration.
func externalRefs(page string) []string {
	var out []string
	for _, m := range namespaceRE.FindAllStringSubmatch(page, -1) {
		if !allowedNamespaces[m[1]] {
			out = append(out, "namespace "+m[1])
		}
	}
	for _, m := range fetchAttrRE.FindAllStringSubmatch(page, -1) {
		v := strings.Trim(m[2], `"'`)
		v = strings.TrimSpace(v)
		// An inlined PNG (the gallery's overlays) is part of the page.
		if strings.HasPrefix(v, "data:image/png;base64,") {
			continue
		}
		if strings.HasPrefix(v, "//") || schemeRE.MatchString(v) {
			out = append(out, m[0])
		}
	}
	rest := namespaceRE.ReplaceAllString(page, "")
	for _, bad := range []string{"http://", "https://", "url(", "@import"} {
		if strings.Contains(strings.ToLower(rest), bad) {
			out = append(out, bad)
		}
	}
	return out
}

// The checker itself must catch what it is for and pass what is fine.
func TestExternalRefsChecker(t *testing.T) {
	tests := []struct {
		html string
		bad  bool
	}{
		{`<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink"></svg>`, false},
		{`<a href="#run-a">a</a> <a href="runs/a/loss.png">PNG</a>`, false},
		{`<script src="https://cdn.example.com/x.js"></script>`, true},
		{`<img src="//cdn.example.com/x.png">`, true},
		{`<link href='http://example.com/a.css'>`, true},
		{`<image xlink:href="data:image/svg+xml;base64,AAAA"/>`, true},    // not needed: the page inlines SVG
		{`<img src="data:image/png;base64,iVBORw0KGgo=" alt="x">`, false}, // a gallery overlay, inlined
		{`<style>body{background:url(x.png)}</style>`, true},
		{`<style>@import "x.css";</style>`, true},
		{`<svg xmlns="http://evil.example/ns"></svg>`, true},
		{`<p>see https://example.com</p>`, true},
	}
	for _, tc := range tests {
		if got := len(externalRefs(tc.html)) > 0; got != tc.bad {
			t.Errorf("externalRefs(%q) found %v, want %v", tc.html, got, tc.bad)
		}
	}
}

// One epoch, NaNs and nothing at all must still give a report.
func TestWriteEdgeCases(t *testing.T) {
	root := t.TempDir()
	fixture{name: "only", cfg: testConfig("vgg8", "val_acc", 1), status: finished(1),
		epochs: []epoch{{0.5, 0.5, 0.9, true, conf(5)}}}.write(t, root)
	fixture{name: "nan", cfg: testConfig("vgg8", "val_acc", 2), status: finished(2),
		epochs: []epoch{{-1, -1, -1, false, nil}, {-1, -1, -1, false, nil}}}.write(t, root)
	// Written as today's kfash-tf writes NaN: "NaN" strings in metrics.jsonl.
	nan := math.NaN()
	fixture{name: "nan-strings", cfg: testConfig("vgg8", "val_acc", 2), status: finished(2),
		epochs: []epoch{{nan, nan, nan, false, nil}, {nan, nan, math.Inf(1), false, nil}}}.write(t, root)
	found, err := Find([]string{root})
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	if _, err := Write(Build(found, Options{Network: fakeNetworks}), out, Formats{HTML: true, Markdown: true}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"comparison", "runs/only/accuracy", "runs/only/loss", "runs/only/confusion"} {
		checkPNG(t, filepath.Join(out, name+".png"))
		checkSVG(t, filepath.Join(out, name+".svg"))
	}
	page := readString(t, filepath.Join(out, "index.html"))
	if strings.Count(page, "no epoch has a valid val_acc") != 2 {
		t.Error("the problem of each all-NaN run (old -1, new \"NaN\") is not shown")
	}
	// A report of runs none of which has an epoch yet.
	empty := t.TempDir()
	fixture{name: "new", cfg: testConfig("vgg8", "val_acc", 5)}.write(t, empty)
	found, err = Find([]string{empty})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Write(Build(found, Options{Network: fakeNetworks}), t.TempDir(), Formats{HTML: true, Markdown: true, JSON: true}); err != nil {
		t.Fatal(err)
	}
}

func readString(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func countFiles(t *testing.T, dir, suffix string) int {
	t.Helper()
	n := 0
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.Contains(d.Name(), suffix) {
			n++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}
