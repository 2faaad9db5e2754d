package fmnist

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// idxBytes builds an IDX file: magic, dimensions, then data.
func idxBytes(magic uint32, dims []int, data []byte) []byte {
	var b bytes.Buffer
	binary.Write(&b, binary.BigEndian, magic)
	for _, d := range dims {
		binary.Write(&b, binary.BigEndian, uint32(d))
	}
	b.Write(data)
	return b.Bytes()
}

func gzipBytes(t *testing.T, data []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	zw.Write(data)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func writeIDXFile(t *testing.T, path string, data []byte) string {
	t.Helper()
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestReadIDX(t *testing.T) {
	dir := t.TempDir()
	pix := make([]byte, 3*2*4)
	for i := range pix {
		pix[i] = byte(i)
	}
	imgs := idxBytes(ImagesMagic, []int{3, 2, 4}, pix)
	labels := idxBytes(LabelsMagic, []int{3}, []byte{2, 0, 9})
	for _, gz := range []bool{false, true} {
		ip, lp := filepath.Join(dir, "img"), filepath.Join(dir, "lab")
		ib, lb := imgs, labels
		if gz {
			ip, lp = ip+".gz", lp+".gz"
			ib, lb = gzipBytes(t, imgs), gzipBytes(t, labels)
		}
		writeIDXFile(t, ip, ib)
		writeIDXFile(t, lp, lb)
		m, l, err := ReadPair(ip, lp, 10)
		if err != nil {
			t.Fatalf("gz=%v: %v", gz, err)
		}
		if m.Count != 3 || m.Rows != 2 || m.Cols != 4 || !bytes.Equal(l, []byte{2, 0, 9}) {
			t.Fatalf("gz=%v: got %d×%d×%d labels %v", gz, m.Count, m.Rows, m.Cols, l)
		}
		if got := m.Image(1); !bytes.Equal(got, pix[8:16]) {
			t.Errorf("gz=%v: Image(1) = %v", gz, got)
		}
	}
}

func TestReadIDXErrors(t *testing.T) {
	dir := t.TempDir()
	good := idxBytes(ImagesMagic, []int{2, 2, 2}, make([]byte, 8))
	labels2 := writeIDXFile(t, filepath.Join(dir, "labels2"), idxBytes(LabelsMagic, []int{2}, []byte{1, 1}))
	labels3 := writeIDXFile(t, filepath.Join(dir, "labels3"), idxBytes(LabelsMagic, []int{3}, []byte{1, 1, 1}))
	badLabel := writeIDXFile(t, filepath.Join(dir, "badlabel"), idxBytes(LabelsMagic, []int{2}, []byte{1, 12}))
	imgs := writeIDXFile(t, filepath.Join(dir, "imgs"), good)
	cases := []struct {
		name, images, labels string
		want                 []string
	}{
		{"wrong magic", writeIDXFile(t, filepath.Join(dir, "magic"), idxBytes(LabelsMagic, []int{2, 2, 2}, make([]byte, 8))), labels2,
			[]string{"magic", "0x00000801", "0x00000803", filepath.Join(dir, "magic")}},
		{"labels as images", imgs, imgs, []string{"magic", filepath.Join(dir, "imgs")}},
		{"truncated data", writeIDXFile(t, filepath.Join(dir, "short"), good[:len(good)-3]), labels2,
			[]string{"truncated", filepath.Join(dir, "short")}},
		{"truncated header", writeIDXFile(t, filepath.Join(dir, "head"), good[:6]), labels2,
			[]string{"truncated", filepath.Join(dir, "head")}},
		{"empty", writeIDXFile(t, filepath.Join(dir, "empty"), nil), labels2, []string{"truncated", filepath.Join(dir, "empty")}},
		{"truncated gzip", writeIDXFile(t, filepath.Join(dir, "tgz.gz"), gzipBytes(t, good)[:20]), labels2,
			[]string{"truncated", filepath.Join(dir, "tgz.gz")}},
		{"count mismatch", imgs, labels3, []string{"2 images", "3 labels", imgs, labels3}},
		{"label range", imgs, badLabel, []string{"label 12", badLabel}},
		{"missing", filepath.Join(dir, "nope"), labels2, []string{"nope"}},
	}
	for _, c := range cases {
		_, _, err := ReadPair(c.images, c.labels, 10)
		if err == nil {
			t.Errorf("%s: no error", c.name)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not mention %q", c.name, err, w)
			}
		}
	}
}

func TestFindIDX(t *testing.T) {
	dir := t.TempDir()
	if _, err := FindIDX(dir, "x-idx1-ubyte"); err == nil {
		t.Error("FindIDX found a missing file")
	}
	writeIDXFile(t, filepath.Join(dir, "x-idx1-ubyte.gz"), nil)
	if p, err := FindIDX(dir, "x-idx1-ubyte"); err != nil || filepath.Base(p) != "x-idx1-ubyte.gz" {
		t.Errorf("FindIDX = %q, %v", p, err)
	}
	writeIDXFile(t, filepath.Join(dir, "x-idx1-ubyte"), nil)
	if p, err := FindIDX(dir, "x-idx1-ubyte"); err != nil || filepath.Base(p) != "x-idx1-ubyte" {
		t.Errorf("FindIDX = %q, %v, want the uncompressed file", p, err)
	}
}
