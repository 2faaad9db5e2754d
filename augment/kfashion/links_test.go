//go:build unix

package kfashion

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// A photo reached through a symbolic link that leads out of the source
// folder is copied; one whose link stays inside may still be hard-linked.
func TestImportCopiesLinksOutsideSrc(t *testing.T) {
	base := t.TempDir()
	src := filepath.Join(base, "src")
	writeTree(t, src)
	img := func(id string) string {
		return filepath.Join(src, "Training", "원천데이터", "레트로", id+".jpg")
	}
	outside := filepath.Join(base, "elsewhere", "2003.jpg")
	inside := filepath.Join(src, "Extra", "2004.jpg")
	for _, m := range []struct{ from, to string }{{img("2003"), outside}, {img("2004"), inside}} {
		if err := os.MkdirAll(filepath.Dir(m.to), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(m.from, m.to); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(m.to, m.from); err != nil {
			t.Fatal(err)
		}
	}
	// Extra/2004.jpg is now an image of its own too: drop the duplicate by
	// linking it from a hidden folder, which the walk ignores.
	hidden := filepath.Join(src, ".store", "2004.jpg")
	if err := os.MkdirAll(filepath.Dir(hidden), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(inside, hidden); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(img("2004")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(hidden, img("2004")); err != nil {
		t.Fatal(err)
	}

	out := filepath.Join(base, "out")
	if _, err := Import(Options{Src: src, Out: out, Styles: []string{"retro"},
		TrainPerClass: 4, ValPerClass: 1, Seed: 1}); err != nil {
		t.Fatal(err)
	}
	imported := func(id string) os.FileInfo {
		t.Helper()
		for _, split := range []string{"Train", "Validation"} {
			if fi, err := os.Stat(filepath.Join(out, split, "Retro", id+".jpg")); err == nil {
				return fi
			}
		}
		t.Fatalf("%s.jpg not imported: %v", id, filesIn(t, out))
		return nil
	}
	outInfo, err := os.Stat(outside)
	if err != nil {
		t.Fatal(err)
	}
	got := imported("2003")
	if os.SameFile(got, outInfo) || !got.Mode().IsRegular() {
		t.Errorf("2003.jpg, linked from outside --src, is the outside file itself (hard link), want a copy")
	}
	if st, ok := got.Sys().(*syscall.Stat_t); ok && st.Nlink != 1 {
		t.Errorf("2003.jpg has %d links, want 1 (a copy)", st.Nlink)
	}
	if st, ok := outInfo.Sys().(*syscall.Stat_t); ok && st.Nlink != 1 {
		t.Errorf("the file outside --src gained links (%d)", st.Nlink)
	}
	hiddenInfo, err := os.Stat(hidden)
	if err != nil {
		t.Fatal(err)
	}
	if !os.SameFile(imported("2004"), hiddenInfo) {
		t.Errorf("2004.jpg, linked from inside --src, was not hard-linked")
	}
}
