package main

import (
	"archive/zip"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kfash-tf/kfash-tf/augment/augmenttest"
)

// kfashionLabel is a K-Fashion label as AI Hub ships it (style "" writes
// [{}], no style).
func kfashionLabel(id int, style string) []byte {
	st := "{}"
	if style != "" {
		st = fmt.Sprintf(`{"스타일": %q}`, style)
	}
	return []byte(fmt.Sprintf(`{"이미지 정보": {"이미지 식별자": %d, "이미지 파일명": "%d.jpg", "이미지 너비": 32, "이미지 높이": 32},
 "데이터셋 정보": {"파일 생성일자": "2020-12-01 00:00:00", "데이터셋 상세설명": {
  "렉트좌표": {"아우터": [{}], "하의": [{"X좌표": 4.5, "Y좌표": 16, "가로": 20, "세로": 14}], "원피스": [{}], "상의": [{"X좌표": 4, "Y좌표": 2, "가로": 22, "세로": 14}]},
  "라벨링": {"스타일": [%s], "상의": [{"색상": "블랙"}]}}}}`, id, id, st))
}

// kfashionDownload writes an AI-Hub-shaped K-Fashion tree: four photos each
// of 리조트 (folders), 레트로 and 스포티 (photos in a zip archive), plus a
// label without style and a photo without label.
func kfashionDownload(t *testing.T) string {
	t.Helper()
	root := filepath.Join(t.TempDir(), "K-Fashion")
	write := func(rel string, data []byte) {
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	f, err := os.Create(filepath.Join(t.TempDir(), "원천데이터.zip"))
	if err != nil {
		t.Fatal(err)
	}
	zw := zip.NewWriter(f)
	for c, style := range []string{"리조트", "레트로", "스포티"} {
		for i := 0; i < 4; i++ {
			id := 1000*(c+1) + i
			write(fmt.Sprintf("라벨링데이터/%s/%d.json", style, id), kfashionLabel(id, style))
			photo := augmenttest.JPEG(c, 32, int64(id))
			if c == 0 {
				write(fmt.Sprintf("원천데이터/%s/%d.jpg", style, id), photo)
				continue
			}
			w, err := zw.Create(fmt.Sprintf("원천데이터/%s/%d.jpg", style, id))
			if err != nil {
				t.Fatal(err)
			}
			w.Write(photo)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(f.Name(), filepath.Join(root, "원천데이터.zip")); err != nil {
		t.Fatal(err)
	}
	write("라벨링데이터/리조트/1900.json", kfashionLabel(1900, ""))
	write("원천데이터/리조트/1900.jpg", augmenttest.JPEG(0, 32, 1900))
	write("원천데이터/리조트/1901.jpg", augmenttest.JPEG(0, 32, 1901))
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
