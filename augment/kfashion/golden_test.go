package kfashion

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/kfashion/golden")

// The AI-Hub-shaped download of testdata/kfashion/download (plain photos,
// photos in a zip archive with CP949 names, a label without style, a photo
// without label) gives exactly the golden import-summary.json and
// manifest.csv: the picks of a seed, the counts, the skip reasons and the
// sources are part of what an import means, and must not drift.
func TestImportGolden(t *testing.T) {
	src := copyTestdata(t, "kfashion/download")
	out := filepath.Join(t.TempDir(), "out")
	if _, err := Import(Options{Src: src, Out: out, Styles: []string{"resort", "retro", "sporty"},
		TrainPerClass: 2, ValPerClass: 1, Seed: 3}); err != nil {
		t.Fatal(err)
	}
	// The source folder and the finish time change from run to run.
	unsrc := func(s string) string { return strings.ReplaceAll(s, src, "SRC") }
	data, err := os.ReadFile(filepath.Join(out, SummaryFile))
	if err != nil {
		t.Fatal(err)
	}
	var sum Summary
	if err := json.Unmarshal(data, &sum); err != nil {
		t.Fatal(err)
	}
	if sum.Finished == "" {
		t.Error("no finish time")
	}
	sum.Settings.Src, sum.Finished = unsrc(sum.Settings.Src), ""
	for i := range sum.Skipped {
		for j, e := range sum.Skipped[i].Examples {
			sum.Skipped[i].Examples[j] = unsrc(e)
		}
	}
	gotSummary, err := json.MarshalIndent(sum, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	manifest, err := os.ReadFile(filepath.Join(out, ManifestFile))
	if err != nil {
		t.Fatal(err)
	}
	for name, got := range map[string][]byte{SummaryFile: append(gotSummary, '\n'), ManifestFile: []byte(unsrc(string(manifest)))} {
		golden := filepath.Join(testdataDir, "kfashion", "golden", name)
		if *update {
			if err := os.WriteFile(golden, got, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(golden)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from %s (go test -run TestImportGolden -update rewrites it):\n%s", name, golden, got)
		}
	}
}
