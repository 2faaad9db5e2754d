package kfashion

import (
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// testdataDir is the repository's shared fixtures (see its README.md).
const testdataDir = "../../testdata"

// writeFile writes data at path, creating its folders.
func writeFile(t testing.TB, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// readTestdata reads a fixture, rel being slash-separated under testdata/.
func readTestdata(t testing.TB, rel string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(testdataDir, filepath.FromSlash(rel)))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// copyTestdata copies the fixture folder rel into a new temporary folder and
// returns the copy: imports hard-link their sources, and the fixtures must
// stay as they are.
func copyTestdata(t testing.TB, rel string) string {
	t.Helper()
	from := filepath.Join(testdataDir, filepath.FromSlash(rel))
	to := filepath.Join(t.TempDir(), filepath.Base(from))
	err := filepath.WalkDir(from, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		r, err := filepath.Rel(from, p)
		if err != nil {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		writeFile(t, filepath.Join(to, r), data)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return to
}
