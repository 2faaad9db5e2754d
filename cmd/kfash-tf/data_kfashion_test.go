package main

import (
	"encoding/csv"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// kfashionDownload copies testdata/kfashion/download, an AI-Hub-shaped
// K-Fashion download (see testdata/README.md), into a new folder: four
// photos each of 리조트 (plain files), 레트로 and 스포티 (in a zip archive
// with CP949 names), plus a label without style and a photo without label.
// The copy lets the import hard-link its photos without touching the
// fixture.
func kfashionDownload(t *testing.T) string {
	t.Helper()
	from := filepath.Join("..", "..", "testdata", "kfashion", "download")
	root := filepath.Join(t.TempDir(), "K-Fashion")
	err := filepath.WalkDir(from, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(from, p)
		if err != nil {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Join(root, filepath.Dir(rel)), 0o755); err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(root, rel), data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func countFiles(t *testing.T, dir string) int {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	return len(entries)
}

func TestDataImportKfashion(t *testing.T) {
	src := kfashionDownload(t)
	out := filepath.Join(t.TempDir(), "kfashion")
	args := []string{"data", "import-kfashion", "--src", src, "--out", out, "--train-per-class", "2", "--val-per-class", "1", "--seed", "3"}
	stdout, stderr, code := run(t, args...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{"imported 9 photos", "3 hard links", "6 files written", "1 zip archives",
		"Resort", "Retro", "Sporty", "리조트", "no_style", "1900.json", "image_without_label", "1901.jpg", "manifest.csv"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("summary lacks %q:\n%s", want, stdout)
		}
	}
	for _, want := range []string{"scanning --src: 27 label and image files", "reading labels: 13/13", "importing photos: 9/9"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("progress lacks %q:\n%s", want, stderr)
		}
	}
	for _, split := range []struct {
		name string
		n    int
	}{{"Train", 2}, {"Validation", 1}} {
		for _, class := range []string{"Resort", "Retro", "Sporty"} {
			if n := countFiles(t, filepath.Join(out, split.name, class)); n != split.n {
				t.Errorf("%s/%s has %d photos, want %d", split.name, class, n, split.n)
			}
		}
	}
	mf, err := os.Open(filepath.Join(out, "manifest.csv"))
	if err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(mf).ReadAll()
	mf.Close()
	if err != nil || len(rows) != 10 || rows[0][0] != "id" {
		t.Errorf("manifest: %d rows, %v", len(rows), err)
	}
	// The zip archive's CP949 member names come back as Korean.
	zipped := map[string]string{"Retro": "레트로", "Sporty": "스포티"}
	for _, r := range rows[1:] {
		if k, ok := zipped[r[1]]; ok && !strings.Contains(r[5], "원천데이터.zip!원천데이터/"+k+"/") {
			t.Errorf("manifest row %v: image source is not the zip member by its Korean name", r)
		}
	}
	if stdout, stderr, code := run(t, "data", "stats", out); code != 0 || !strings.Contains(stdout, "Sporty") {
		t.Errorf("data stats of the import: exit %d\n%s%s", code, stdout, stderr)
	}

	// Again with the same settings: replaced. With another seed: refused.
	if stdout, stderr, code := run(t, args...); code != 0 || !strings.Contains(stdout, "previous import replaced") {
		t.Errorf("same settings again: exit %d\n%s%s", code, stdout, stderr)
	}
	other := append(append([]string{}, args[:len(args)-1]...), "4")
	if _, stderr, code := run(t, other...); code == 0 || !strings.Contains(stderr, "--seed 4 (it has 3)") {
		t.Errorf("other seed into the same folder: exit %d, %s", code, stderr)
	}

	jsonOut := filepath.Join(t.TempDir(), "json")
	stdout, stderr, code = run(t, "data", "import-kfashion", "--src", src, "--out", jsonOut, "--styles", "sporty,리조트",
		"--train-per-class", "3", "--val-per-class", "1", "--crop", "outfit", "--format", "json")
	if code != 0 {
		t.Fatalf("--format json: exit %d: %s", code, stderr)
	}
	var sum struct {
		Classes []struct {
			Style             string
			Train, Validation int
		}
		Written int
	}
	if err := json.Unmarshal([]byte(stdout), &sum); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, stdout)
	}
	if len(sum.Classes) != 2 || sum.Classes[0].Style != "Sporty" || sum.Classes[0].Train != 3 || sum.Classes[1].Validation != 1 || sum.Written != 8 {
		t.Errorf("summary %+v", sum)
	}
}

func TestDataImportKfashionUsage(t *testing.T) {
	stdout, _, code := run(t, "data", "import-kfashion", "--help")
	if code != 0 || !strings.Contains(stdout, "Examples:") || !strings.Contains(stdout, "import-kfashion --src") || !strings.Contains(stdout, "Hip-hop 힙합") {
		t.Errorf("help (exit %d):\n%s", code, stdout)
	}
	src := kfashionDownload(t)
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"--out", t.TempDir()}, []string{"--src and --out are required"}},
		{[]string{"--src", src, "--out", filepath.Join(t.TempDir(), "o"), "--styles", "resort,spacesuit"}, []string{`"spacesuit"`, "Hip-hop (힙합)"}},
		{[]string{"--src", src, "--out", filepath.Join(t.TempDir(), "o"), "--styles", "punk"}, []string{"no images of Punk (펑크)", "Resort 4"}},
		{[]string{"--src", src, "--out", src}, []string{"not empty", "not a K-Fashion import"}},
	} {
		_, stderr, code := run(t, append([]string{"data", "import-kfashion"}, tc.args...)...)
		for _, want := range tc.want {
			if code == 0 || !strings.Contains(stderr, want) {
				t.Errorf("%v: exit %d, message %q lacks %q", tc.args, code, stderr, want)
			}
		}
	}
}
