package kfashion

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"image"
	"image/jpeg"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"golang.org/x/text/encoding/korean"
	"golang.org/x/text/unicode/norm"

	"github.com/kfash-tf/kfash-tf/augment"
	"github.com/kfash-tf/kfash-tf/augment/augmenttest"
)

// fixtureBoxes are garment boxes of a fixture label, keyed by garment.
type fixtureBoxes map[string][]map[string]any

// normalBoxes are the boxes of most fixture labels, for a 40×60 photo:
// their union is (10,10)-(30,55), so the outfit crop with its 5% margin is
// (9,7)-(31,58).
var normalBoxes = fixtureBoxes{
	"상의": {{"X좌표": 10, "Y좌표": 10, "가로": 20, "세로": 20}},
	"하의": {{"X좌표": 12.5, "Y좌표": 30.0, "가로": 15, "세로": 25}},
}

// labelDoc returns a label shaped like AI Hub's: id is written as a JSON
// number when numeric. style "" writes [{}] (no style); boxes nil writes
// [{}] for every garment.
func labelDoc(id any, style, sub string, w, h int, boxes fixtureBoxes) []byte {
	styleObj := map[string]any{}
	if style != "" {
		styleObj["스타일"] = style
	}
	if sub != "" {
		styleObj["서브스타일"] = sub
	}
	rects := map[string]any{}
	for _, g := range []string{"아우터", "하의", "원피스", "상의"} {
		if b, ok := boxes[g]; ok {
			rects[g] = b
		} else {
			rects[g] = []any{map[string]any{}}
		}
	}
	doc := map[string]any{
		"이미지 정보": map[string]any{"이미지 식별자": id, "이미지 파일명": fmt.Sprintf("%v.jpg", id), "이미지 너비": w, "이미지 높이": h},
		"데이터셋 정보": map[string]any{
			"파일 생성일자": "2020-12-01 00:00:00",
			"데이터셋 상세설명": map[string]any{
				"렉트좌표":  rects,
				"폴리곤좌표": map[string]any{"상의": []any{map[string]any{"X좌표1": 1, "Y좌표1": 2}}},
				"라벨링": map[string]any{
					"스타일": []any{styleObj},
					"상의":  []any{map[string]any{"색상": "블랙"}},
				},
			},
		},
	}
	data, _ := json.Marshal(doc) // maps of plain values always marshal
	return data
}

// photo is a 40×60 JPEG whose content depends on k.
func photo(t testing.TB, k int) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, augmenttest.Noise(40, 60, int64(k)), &jpeg.Options{Quality: 95}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// writeTree writes a small AI-Hub-shaped download under root:
//
//	Resort 리조트: 1001–1008 usable (1007 has no garment box, 1008's label
//	  says 400×600 with boxes ×10), 1105 whose image is not an image;
//	Retro 레트로: 2001–2005, plus a second 2001.jpg elsewhere (duplicate);
//	Sporty 스포티: 3001–3004, and label_3005.json paired by its 이미지 식별자;
//	Classic 클래식: 4001 (a style not imported);
//	problems: 1100 no style, 1101 unknown style, 1102.jpg without label,
//	  1103.json without image, 1104.json not JSON;
//	clutter: .DS_Store, __MACOSX/, readme.txt.
//
// 24 label files, 25 image files.
func writeTree(t testing.TB, root string) {
	t.Helper()
	lab := func(style, name string, data []byte) {
		writeFile(t, filepath.Join(root, "Training", "라벨링데이터", style, name), data)
	}
	img := func(style, name string, data []byte) {
		writeFile(t, filepath.Join(root, "Training", "원천데이터", style, name), data)
	}
	for id := 1001; id <= 1008; id++ {
		boxes, w, h := normalBoxes, 40, 60
		switch id {
		case 1006: // a box over the whole photo: the crop is clamped to it
			boxes = fixtureBoxes{"원피스": {{"X좌표": 0, "Y좌표": 0, "가로": 40, "세로": 60}}}
		case 1007:
			boxes = nil
		case 1008:
			w, h = 400, 600
			boxes = fixtureBoxes{
				"상의": {{"X좌표": 100, "Y좌표": 100, "가로": 200, "세로": 200}},
				"하의": {{"X좌표": 125, "Y좌표": 300, "가로": 150, "세로": 250}},
			}
		}
		lab("리조트", fmt.Sprintf("%d.json", id), labelDoc(id, "리조트", "", w, h, boxes))
		img("리조트", fmt.Sprintf("%d.jpg", id), photo(t, id))
	}
	lab("리조트", "1105.json", labelDoc(1105, "리조트", "", 40, 60, normalBoxes))
	img("리조트", "1105.jpg", []byte("this is not a JPEG"))
	for id := 2001; id <= 2005; id++ {
		sub := ""
		if id == 2001 {
			sub = "스포티"
		}
		lab("레트로", fmt.Sprintf("%d.json", id), labelDoc(id, "레트로", sub, 40, 60, normalBoxes))
		img("레트로", fmt.Sprintf("%d.jpg", id), photo(t, id))
	}
	writeFile(t, filepath.Join(root, "Validation", "원천데이터", "레트로", "2001.jpg"), photo(t, 2001))
	for id := 3001; id <= 3005; id++ {
		name := fmt.Sprintf("%d.json", id)
		data := labelDoc(id, "스포티", "", 40, 60, normalBoxes)
		if id == 3001 {
			data = labelDoc(id, "스포티", "리조트", 40, 60, normalBoxes)
		}
		if id == 3005 {
			// Named differently, and with the id only (as a string).
			name = "label_3005.json"
			data = []byte(`{"이미지 정보": {"이미지 식별자": "3005", "이미지 너비": 40, "이미지 높이": 60},
				"데이터셋 정보": {"데이터셋 상세설명": {"렉트좌표": {"상의": [{"X좌표": "10", "Y좌표": 10.0, "가로": 20, "세로": 20}]},
				"라벨링": {"스타일": [{"스타일": "스포티"}]}}}}`)
		}
		lab("스포티", name, data)
		img("스포티", fmt.Sprintf("%d.jpg", id), photo(t, id))
	}
	lab("클래식", "4001.json", labelDoc(4001, "클래식", "", 40, 60, normalBoxes))
	img("클래식", "4001.jpg", photo(t, 4001))

	lab("리조트", "1100.json", labelDoc(1100, "", "", 40, 60, normalBoxes))
	img("리조트", "1100.jpg", photo(t, 1100))
	lab("리조트", "1101.json", labelDoc(1101, "우주복", "", 40, 60, normalBoxes))
	img("리조트", "1101.jpg", photo(t, 1101))
	img("리조트", "1102.jpg", photo(t, 1102))
	lab("리조트", "1103.json", labelDoc(1103, "리조트", "", 40, 60, normalBoxes))
	lab("리조트", "1104.json", []byte(`{"이미지 정보": {"이미지 식별자": 1104,`))
	img("리조트", "1104.jpg", photo(t, 1104))

	writeFile(t, filepath.Join(root, ".DS_Store"), []byte("junk"))
	writeFile(t, filepath.Join(root, "__MACOSX", "Training", "._1001.jpg"), []byte("junk"))
	writeFile(t, filepath.Join(root, "readme.txt"), []byte("K-Fashion"))
}

// zipMember is a file to put in a test archive.
type zipMember struct {
	name  string
	data  []byte
	cp949 bool   // store the name in CP949 without the UTF-8 flag
	extra []byte // extra field
}

func writeZip(t testing.TB, p string, members []zipMember) {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, m := range members {
		fh := &zip.FileHeader{Name: m.name, Method: zip.Deflate, Extra: m.extra}
		if m.cp949 {
			enc, err := korean.EUCKR.NewEncoder().String(m.name)
			if err != nil {
				t.Fatal(err)
			}
			fh.Name, fh.NonUTF8 = enc, true
		}
		w, err := zw.CreateHeader(fh)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(m.data)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	writeFile(t, p, buf.Bytes())
}

// zipTree puts the files of dir whose relative path matches keep into an
// archive, with names relative to dir.
func zipTree(t testing.TB, dir, archive string, cp949 bool, keep func(rel string) bool) {
	t.Helper()
	var members []zipMember
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if !keep(filepath.ToSlash(rel)) {
			return nil
		}
		data, err := os.ReadFile(p)
		members = append(members, zipMember{name: filepath.ToSlash(rel), data: data, cp949: cp949})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	writeZip(t, archive, members)
}

// readManifest returns manifest.csv's rows as maps by column.
func readManifest(t testing.TB, out string) []map[string]string {
	t.Helper()
	f, err := os.Open(filepath.Join(out, ManifestFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(recs[0], manifestHeader) {
		t.Fatalf("manifest header %v", recs[0])
	}
	var rows []map[string]string
	for _, r := range recs[1:] {
		m := map[string]string{}
		for i, h := range recs[0] {
			m[h] = r[i]
		}
		rows = append(rows, m)
	}
	return rows
}

// picks lists "split/style/id" of every manifest row, in manifest order.
func picks(rows []map[string]string) []string {
	var out []string
	for _, r := range rows {
		out = append(out, r["split"]+"/"+r["style"]+"/"+r["id"])
	}
	return out
}

func skipCounts(s *Summary) map[string]int {
	m := map[string]int{}
	for _, k := range s.Skipped {
		m[k.Reason] = k.Count
	}
	return m
}

// filesIn lists the files under dir, relative, sorted.
func filesIn(t testing.TB, dir string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	sort.Strings(out)
	return out
}

func TestImportFolders(t *testing.T) {
	src := filepath.Join(t.TempDir(), "K-Fashion")
	writeTree(t, src)
	out := filepath.Join(t.TempDir(), "kfashion")
	stages := map[string]Progress{}
	sum, err := Import(Options{Src: src, Out: out, Styles: []string{"resort", "Retro", "스포티"},
		TrainPerClass: 8, ValPerClass: 2, Seed: 1, Workers: 3,
		Progress: func(p Progress) { stages[p.Stage] = p }})
	if err != nil {
		t.Fatal(err)
	}

	if sum.LabelFiles != 24 || sum.ImageFiles != 25 || sum.Archives != 0 {
		t.Errorf("found %d labels, %d images, %d archives; want 24, 25, 0", sum.LabelFiles, sum.ImageFiles, sum.Archives)
	}
	wantSkips := map[string]int{
		SkipUnreadableJSON: 1, SkipNoStyle: 1, SkipUnknownStyle: 1,
		SkipLabelWithoutImage: 1, SkipImageWithoutLabel: 1, SkipDuplicateID: 1,
		SkipUnreadableImage: 1,
	}
	if got := skipCounts(sum); !reflect.DeepEqual(got, wantSkips) {
		t.Errorf("skips %v, want %v", got, wantSkips)
	}
	examples := map[string]string{
		SkipUnreadableJSON: "1104.json", SkipNoStyle: "1100.json", SkipUnknownStyle: "우주복",
		SkipLabelWithoutImage: "1103.json", SkipImageWithoutLabel: "1102.jpg", SkipDuplicateID: "2001.jpg",
		SkipUnreadableImage: "1105.jpg",
	}
	for _, k := range sum.Skipped {
		if len(k.Examples) != 1 || !strings.Contains(k.Examples[0], examples[k.Reason]) || k.Description == "" {
			t.Errorf("%s: examples %q, want one naming %s", k.Reason, k.Examples, examples[k.Reason])
		}
	}
	if sum.OtherStyles != 1 || sum.NotPicked != 0 {
		t.Errorf("other styles %d, not picked %d; want 1, 0", sum.OtherStyles, sum.NotPicked)
	}
	// Fewer than the 10 requested everywhere: split 8:2.
	wantClasses := []Class{
		{Style: "Resort", Korean: "리조트", Found: 9, Train: 6, Validation: 2},
		{Style: "Retro", Korean: "레트로", Found: 5, Train: 4, Validation: 1},
		{Style: "Sporty", Korean: "스포티", Found: 5, Train: 4, Validation: 1},
	}
	if !reflect.DeepEqual(sum.Classes, wantClasses) {
		t.Errorf("classes %+v\nwant %+v", sum.Classes, wantClasses)
	}
	if len(sum.Warnings) != 3 || !strings.Contains(sum.Warnings[0], "only 8 usable images of the 10 requested") {
		t.Errorf("warnings %q", sum.Warnings)
	}
	if sum.Linked != 18 || sum.Copied+sum.Written != 0 {
		t.Errorf("linked %d, copied %d, written %d; want 18 links", sum.Linked, sum.Copied, sum.Written)
	}
	for stage, want := range map[string]int{StageScan: 49, StageLabels: 24, StageImages: 18} {
		if p := stages[stage]; p.Done != want || p.Total != want {
			t.Errorf("last %s progress %+v, want %d/%d", stage, p, want, want)
		}
	}

	rows := readManifest(t, out)
	if len(rows) != 18 {
		t.Fatalf("%d manifest rows, want 18", len(rows))
	}
	seen := map[string]string{}
	for _, r := range rows {
		if prev, dup := seen[r["id"]]; dup {
			t.Errorf("id %s in %s and %s", r["id"], prev, r["split"])
		}
		seen[r["id"]] = r["split"]
		outFile := filepath.Join(out, filepath.FromSlash(r["file"]))
		if r["file"] != r["split"]+"/"+r["style"]+"/"+r["id"]+".jpg" {
			t.Errorf("row %v: file %s", r, r["file"])
		}
		a, errA := os.Stat(outFile)
		b, errB := os.Stat(r["image_source"])
		if errA != nil || errB != nil || !os.SameFile(a, b) {
			t.Errorf("%s is not a hard link of %s (%v %v)", outFile, r["image_source"], errA, errB)
		}
		if !strings.Contains(r["label_source"], "라벨링데이터") || r["crop"] != "" {
			t.Errorf("row %v", r)
		}
		switch r["id"] {
		case "2001":
			if r["sub_style"] != "Sporty" {
				t.Errorf("2001's sub-style %q, want Sporty", r["sub_style"])
			}
		case "3005":
			if !strings.HasSuffix(r["label_source"], "label_3005.json") {
				t.Errorf("3005 paired with %s", r["label_source"])
			}
		case "1105", "1100", "1101", "1104", "4001":
			t.Errorf("%s imported", r["id"])
		}
	}
	wantFiles := len(rows) + 2
	if files := filesIn(t, out); len(files) != wantFiles {
		t.Errorf("%d files in out, want %d: %v", len(files), wantFiles, files)
	}
	if _, err := os.Stat(filepath.Join(out, SummaryFile)); err != nil {
		t.Error(err)
	}
	if ds, err := augment.Open(out, augment.OpenOptions{}); err != nil || !reflect.DeepEqual(ds.Classes, []string{"Resort", "Retro", "Sporty"}) {
		t.Errorf("output does not open as a dataset: %v", err)
	}
}

// The same download as folders, as zip archives (CP949 names) and as one
// archive gives the same picks.
func TestImportZip(t *testing.T) {
	tree := filepath.Join(t.TempDir(), "tree")
	writeTree(t, tree)
	opts := Options{Styles: []string{"resort", "retro", "sporty"}, TrainPerClass: 8, ValPerClass: 2, Seed: 1}

	fromFolders := opts
	fromFolders.Src, fromFolders.Out = tree, filepath.Join(t.TempDir(), "a")
	want, err := Import(fromFolders)
	if err != nil {
		t.Fatal(err)
	}
	wantRows := readManifest(t, fromFolders.Out)

	zips := filepath.Join(t.TempDir(), "zips")
	zipTree(t, tree, filepath.Join(zips, "라벨링데이터.zip"), true, func(rel string) bool { return strings.HasSuffix(rel, ".json") })
	zipTree(t, tree, filepath.Join(zips, "원천데이터_리조트.zip"), false, func(rel string) bool { return strings.Contains(rel, "원천데이터/리조트/") })
	zipTree(t, tree, filepath.Join(zips, "sub", "원천데이터_기타.zip"), true, func(rel string) bool {
		return !strings.HasSuffix(rel, ".json") && !strings.Contains(rel, "원천데이터/리조트/")
	})
	fromZips := opts
	fromZips.Src, fromZips.Out = zips, filepath.Join(t.TempDir(), "b")
	got, err := Import(fromZips)
	if err != nil {
		t.Fatal(err)
	}
	rows := readManifest(t, fromZips.Out)
	if !reflect.DeepEqual(picks(rows), picks(wantRows)) {
		t.Errorf("picks from zips\n%v\nfrom folders\n%v", picks(rows), picks(wantRows))
	}
	if !reflect.DeepEqual(skipCounts(got), skipCounts(want)) || got.Archives != 3 || got.LabelFiles != 24 {
		t.Errorf("zips: skips %v, %d archives, %d labels; folders: skips %v", skipCounts(got), got.Archives, got.LabelFiles, skipCounts(want))
	}
	if got.Written != len(rows) || got.Linked != 0 {
		t.Errorf("written %d, linked %d; want %d written", got.Written, got.Linked, len(rows))
	}
	for _, r := range rows {
		// The CP949 names come back as Korean.
		if !strings.Contains(r["label_source"], "라벨링데이터.zip!Training/라벨링데이터/") ||
			!strings.Contains(r["image_source"], ".zip!Training/원천데이터/") {
			t.Errorf("sources %s, %s", r["label_source"], r["image_source"])
		}
		data, err := os.ReadFile(filepath.Join(fromZips.Out, filepath.FromSlash(r["file"])))
		orig, err2 := os.ReadFile(filepath.Join(fromFolders.Out, filepath.FromSlash(r["file"])))
		if err != nil || err2 != nil || !bytes.Equal(data, orig) {
			t.Errorf("%s differs between zip and folder imports (%v %v)", r["file"], err, err2)
		}
	}
	if files := filesIn(t, zips); len(files) != 3 {
		t.Errorf("the source folder changed: %v", files)
	}

	// A single archive holding labels and images.
	single := filepath.Join(t.TempDir(), "K-Fashion.zip")
	zipTree(t, tree, single, true, func(string) bool { return true })
	one := opts
	one.Src, one.Out = single, filepath.Join(t.TempDir(), "c")
	if _, err := Import(one); err != nil {
		t.Fatal(err)
	}
	if rows := readManifest(t, one.Out); !reflect.DeepEqual(picks(rows), picks(wantRows)) {
		t.Errorf("picks from one archive\n%v\nwant\n%v", picks(rows), picks(wantRows))
	}
}

func TestSampling(t *testing.T) {
	src := filepath.Join(t.TempDir(), "src")
	writeTree(t, src)
	run := func(seed int64, styles ...string) (*Summary, []string) {
		t.Helper()
		out := filepath.Join(t.TempDir(), "out")
		sum, err := Import(Options{Src: src, Out: out, Styles: styles, TrainPerClass: 2, ValPerClass: 1, Seed: seed})
		if err != nil {
			t.Fatal(err)
		}
		return sum, picks(readManifest(t, out))
	}
	sum, a := run(1, "retro")
	if len(sum.Warnings) != 0 || sum.NotPicked != 2 || sum.Classes[0].Train != 2 || sum.Classes[0].Validation != 1 {
		t.Errorf("retro 2+1 of 5: %+v", sum)
	}
	if _, again := run(1, "retro"); !reflect.DeepEqual(a, again) {
		t.Errorf("same seed, different picks: %v, %v", a, again)
	}
	// A style's pick does not depend on the other styles asked for.
	_, withOthers := run(1, "sporty", "retro")
	var retro []string
	for _, p := range withOthers {
		if strings.Contains(p, "/Retro/") {
			retro = append(retro, p)
		}
	}
	if !reflect.DeepEqual(a, retro) {
		t.Errorf("retro picks alone %v, with sporty %v", a, retro)
	}
	if _, b := run(2, "retro"); reflect.DeepEqual(a, b) {
		t.Errorf("seeds 1 and 2 pick the same: %v", a)
	}
}

func TestCropOutfit(t *testing.T) {
	src := filepath.Join(t.TempDir(), "src")
	writeTree(t, src)
	out := filepath.Join(t.TempDir(), "out")
	sum, err := Import(Options{Src: src, Out: out, Styles: []string{"리조트"}, TrainPerClass: 6, ValPerClass: 2,
		Seed: 3, Crop: CropOutfit})
	if err != nil {
		t.Fatal(err)
	}
	skips := skipCounts(sum)
	if skips[SkipNoGarmentBox] != 1 || skips[SkipUnreadableImage] != 1 || sum.Written != 7 {
		t.Errorf("skips %v, written %d; want 1 without box, 1 unreadable, 7 written", skips, sum.Written)
	}
	rows := readManifest(t, out)
	if len(rows) != 7 {
		t.Fatalf("%d rows, want 7", len(rows))
	}
	for _, r := range rows {
		want, size := "9 7 31 58", image.Pt(22, 51)
		if r["id"] == "1006" {
			want, size = "0 0 40 60", image.Pt(40, 60)
		}
		if r["crop"] != want {
			t.Errorf("%s: crop %q, want %q", r["id"], r["crop"], want)
		}
		img, err := augment.DecodeFile(filepath.Join(out, filepath.FromSlash(r["file"])))
		if err != nil {
			t.Fatal(err)
		}
		if got := img.Bounds().Size(); got != size {
			t.Errorf("%s: crop is %v, want %v", r["id"], got, size)
		}
		if r["id"] == "1007" {
			t.Error("1007 has no garment box but was imported")
		}
	}
}

func TestOutFolder(t *testing.T) {
	src := filepath.Join(t.TempDir(), "src")
	writeTree(t, src)
	opts := Options{Src: src, Styles: []string{"retro", "sporty"}, TrainPerClass: 2, ValPerClass: 1, Seed: 1}

	foreign := t.TempDir()
	writeFile(t, filepath.Join(foreign, "notes.txt"), []byte("mine"))
	o := opts
	o.Out = foreign
	if _, err := Import(o); err == nil || !strings.Contains(err.Error(), "not empty (it has notes.txt)") {
		t.Errorf("foreign folder: %v", err)
	}

	// The output inside the source: a second import must not read it.
	o.Out = filepath.Join(src, "imported")
	first, err := Import(o)
	if err != nil {
		t.Fatal(err)
	}
	before := picks(readManifest(t, o.Out))
	writeFile(t, filepath.Join(o.Out, ".tmp-import-kfashion-123", "x.jpg"), []byte("left over"))
	second, err := Import(o)
	if err != nil {
		t.Fatalf("same settings again: %v", err)
	}
	if !second.Replaced || first.Replaced || second.ImageFiles != first.ImageFiles {
		t.Errorf("replaced %v then %v; images found %d then %d", first.Replaced, second.Replaced, first.ImageFiles, second.ImageFiles)
	}
	if after := picks(readManifest(t, o.Out)); !reflect.DeepEqual(before, after) {
		t.Errorf("re-import changed the picks: %v, %v", before, after)
	}
	if files := filesIn(t, o.Out); len(files) != 2*3+2 {
		t.Errorf("files after the re-import: %v", files)
	}

	o.Seed = 2
	_, err = Import(o)
	var se *SettingsError
	if !errors.As(err, &se) || !reflect.DeepEqual(se.Diffs, []SettingDiff{{Name: "seed", Now: "2", Was: "1"}}) ||
		!strings.Contains(err.Error(), "seed 2 (it has 1)") {
		t.Errorf("other seed: %v", err)
	}
	o.Seed = 1
	o.Styles = []string{"sporty", "레트로"} // the same styles in another order
	if _, err := Import(o); err != nil {
		t.Errorf("same styles reordered: %v", err)
	}

	os.Remove(filepath.Join(o.Out, SummaryFile))
	if _, err := Import(o); err == nil || !strings.Contains(err.Error(), "interrupted") {
		t.Errorf("no summary: %v", err)
	}
}

func TestImportErrors(t *testing.T) {
	src := filepath.Join(t.TempDir(), "src")
	writeTree(t, src)
	empty := t.TempDir()
	badZip := filepath.Join(t.TempDir(), "part.zip")
	writeFile(t, badZip, []byte("PK\x03\x04 cut short"))
	base := Options{Src: src, Styles: []string{"resort"}, TrainPerClass: 2, ValPerClass: 1}
	for _, tc := range []struct {
		name string
		edit func(o *Options)
		want string
	}{
		{"unknown style", func(o *Options) { o.Styles = []string{"resort", "spacesuit"} }, `unknown K-Fashion style "spacesuit"`},
		{"style twice", func(o *Options) { o.Styles = []string{"resort", "리조트"} }, "Resort (리조트) twice"},
		{"no styles", func(o *Options) { o.Styles = nil }, "no styles"},
		{"bad crop", func(o *Options) { o.Crop = "face" }, `unknown crop "face"`},
		{"zero train", func(o *Options) { o.TrainPerClass = 0 }, "at least 1"},
		{"no source", func(o *Options) { o.Src = filepath.Join(empty, "nope") }, "cannot read the K-Fashion source"},
		{"empty source", func(o *Options) { o.Src = empty }, "found 0 label (.json) and 0 image files"},
		{"broken zip", func(o *Options) { o.Src = badZip }, "cannot read zip archive"},
		{"style absent", func(o *Options) { o.Styles = []string{"punk"} }, "no images of Punk (펑크) (labels by style: Resort 10, Retro 5, Sporty 5, Classic 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := base
			o.Out = filepath.Join(t.TempDir(), "out")
			tc.edit(&o)
			_, err := Import(o)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
			if _, err := os.Stat(o.Out); err == nil {
				t.Errorf("%s was created by a failed import", o.Out)
			}
		})
	}
}

func TestParseLabel(t *testing.T) {
	// A label as AI Hub ships it: pretty-printed, every garment listed
	// ([{}] when absent), polygons and attributes the importer ignores.
	realistic := string(readTestdata(t, "kfashion/download/Training/라벨링데이터/레트로/2000.json"))
	for _, tc := range []struct {
		name, doc   string
		err         string
		id, file    string
		style, sub  string
		w, h        float64
		boxes, minX float64
	}{
		{name: "realistic", doc: realistic, id: "2000", file: "2000", style: "레트로", sub: "스포티", w: 32, h: 32, boxes: 2, minX: 4},
		{name: "byte order mark", doc: "\xef\xbb\xbf" + realistic, id: "2000", file: "2000", style: "레트로", sub: "스포티", w: 32, h: 32, boxes: 2, minX: 4},
		{name: "no style", doc: `{"이미지 정보": {"이미지 식별자": 7}, "데이터셋 정보": {"데이터셋 상세설명": {"라벨링": {"스타일": [{}]}}}}`, id: "7"},
		{name: "empty style list", doc: `{"데이터셋 정보": {"데이터셋 상세설명": {"라벨링": {"스타일": []}}}}`},
		{name: "strings and floats", doc: `{"이미지 정보": {"이미지 식별자": 55.0, "이미지 파일명": "dir\\55.JPG", "이미지 너비": "640", "이미지 높이": 480.0},
			"데이터셋 정보": {"데이터셋 상세설명": {"렉트좌표": {"상의": {"X좌표": "12.5", "Y좌표": 3, "가로": 4, "세로": 5}, "신발": [{"X좌표": 1, "가로": 0, "세로": 9}]},
			"라벨링": {"스타일": {"스타일": " 스트릿 "}}, "extra": [1, 2]}}, "extra": true}`,
			id: "55", file: "55", style: "스트릿", w: 640, h: 480, boxes: 1, minX: 12.5},
		{name: "odd types", doc: `{"이미지 정보": {"이미지 식별자": "00012", "이미지 너비": [1]}, "데이터셋 정보": {"데이터셋 상세설명": {"렉트좌표": "none", "라벨링": {"스타일": [{"스타일": "펑크"}]}}}}`,
			id: "00012", style: "펑크"},
		{name: "truncated", doc: `{"이미지 정보": {"이미지 식별자": 1`, err: "invalid JSON"},
		{name: "not an object", doc: `[1, 2]`, err: "not a K-Fashion label"},
		{name: "other JSON", doc: `{"name": "K-Fashion", "version": 1}`, err: "not a K-Fashion label"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, err := parseLabel([]byte(tc.doc))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if l.id != tc.id || l.fileStem != tc.file || l.style != tc.style || l.subStyle != tc.sub || l.width != tc.w || l.height != tc.h {
				t.Errorf("got id %q file %q style %q sub %q size %gx%g", l.id, l.fileStem, l.style, l.subStyle, l.width, l.height)
			}
			if float64(len(l.boxes)) != tc.boxes {
				t.Fatalf("%d boxes, want %g: %+v", len(l.boxes), tc.boxes, l.boxes)
			}
			if len(l.boxes) > 0 {
				minX := l.boxes[0].X
				for _, b := range l.boxes {
					minX = min(minX, b.X)
				}
				if minX != tc.minX {
					t.Errorf("leftmost box x %g, want %g", minX, tc.minX)
				}
			}
		})
	}
}

func TestStyleLookup(t *testing.T) {
	if n := len(Styles()); n != 23 {
		t.Fatalf("%d styles, want 23", n)
	}
	english := map[string]bool{}
	for _, s := range Styles() {
		english[s.English] = true
		for _, name := range []string{s.Korean, s.English, strings.ToUpper(s.English), strings.ReplaceAll(s.English, "-", " "),
			norm.NFD.String(s.Korean), " " + s.Korean + " "} {
			got, ok := LookupStyle(name)
			if !ok || got.English != s.English {
				t.Errorf("lookup %q = %v, %v; want %s", name, got.English, ok, s.English)
			}
		}
	}
	if len(english) != 23 {
		t.Errorf("English names are not distinct: %v", english)
	}
	for name, want := range map[string]string{"키치/키덜트": "Kitsch", "키덜트": "Kitsch", "스트릿": "Street", "hiphop": "Hip-hop",
		"avantgarde": "Avant-garde", "소피스트케이티드": "Sophisticated", "힙합": "Hip-hop", "아방가르드": "Avant-garde"} {
		if got, ok := LookupStyle(name); !ok || got.English != want {
			t.Errorf("lookup %q = %q, %v; want %s", name, got.English, ok, want)
		}
	}
	for _, name := range []string{"", "우주복", "resorts", "-"} {
		if got, ok := LookupStyle(name); ok {
			t.Errorf("lookup %q found %s", name, got.English)
		}
	}
}

func TestZipNames(t *testing.T) {
	name := "원천데이터/리조트/1001.jpg"
	unicodePath := func(stored, utf8Name string) []byte {
		field := append([]byte{1}, binary.LittleEndian.AppendUint32(nil, crc32.ChecksumIEEE([]byte(stored)))...)
		field = append(field, utf8Name...)
		return append(binary.LittleEndian.AppendUint16(binary.LittleEndian.AppendUint16(nil, zipUnicodePathTag), uint16(len(field))), field...)
	}
	archive := filepath.Join(t.TempDir(), "names.zip")
	writeZip(t, archive, []zipMember{
		{name: name, cp949: true},
		{name: name},
		{name: "1001.jpg", extra: unicodePath("1001.jpg", name)},
		{name: "1002.jpg", extra: unicodePath("other.jpg", name)}, // CRC of another name: ignored
	})
	zr, err := zip.OpenReader(archive)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	want := []string{name, name, name, "1002.jpg"}
	if !zr.File[0].NonUTF8 || zr.File[0].Name == name {
		t.Fatalf("fixture: first name not stored as CP949 (%q)", zr.File[0].Name)
	}
	for i, f := range zr.File {
		if got := zipMemberName(f); got != want[i] {
			t.Errorf("member %d: %q, want %q", i, got, want[i])
		}
	}
}

func TestLessID(t *testing.T) {
	ids := []string{"b", "100", "0099", "99", "a", "1000", "10a"}
	sort.Slice(ids, func(i, j int) bool { return lessID(ids[i], ids[j]) })
	want := []string{"0099", "99", "100", "1000", "10a", "a", "b"}
	if !reflect.DeepEqual(ids, want) {
		t.Errorf("sorted %v, want %v", ids, want)
	}
}

// When the same id comes twice, plain files win over zip members (they can
// be hard-linked), then the first path; the others are reported.
func TestDuplicates(t *testing.T) {
	src := filepath.Join(t.TempDir(), "src")
	writeTree(t, src)
	// "A/…" sorts before "Training/…": only the plain-first rule keeps the
	// plain images.
	zipTree(t, src, filepath.Join(src, "A", "원천데이터_레트로.zip"), false, func(rel string) bool {
		return strings.HasPrefix(rel, "Training/원천데이터/레트로/")
	})
	data, err := os.ReadFile(filepath.Join(src, "Training", "라벨링데이터", "레트로", "2002.json"))
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(src, "Copy", "2002.json"), data)
	out := filepath.Join(t.TempDir(), "out")
	sum, err := Import(Options{Src: src, Out: out, Styles: []string{"retro"}, TrainPerClass: 4, ValPerClass: 1})
	if err != nil {
		t.Fatal(err)
	}
	var dup Skip
	for _, k := range sum.Skipped {
		if k.Reason == SkipDuplicateID {
			dup = k
		}
	}
	// Validation/…/2001.jpg, the five zipped images, the copied label.
	if dup.Count != 7 || sum.Linked != 5 || sum.Written != 0 {
		t.Errorf("%d duplicates (%q), %d linked, %d written; want 7, 5, 0", dup.Count, dup.Examples, sum.Linked, sum.Written)
	}
	for _, e := range dup.Examples[1:] { // the first is Validation/…/2001.jpg
		if !strings.Contains(e, ".zip!") || !strings.Contains(e, "(same id as "+src+"/Training/") {
			t.Errorf("duplicate example %q: want a zip member, kept second to the plain file", e)
		}
	}
}

// VerifyFull decodes every picked photo and replaces one cut short;
// VerifyHeader reads headers only and takes it. Neither takes a file that
// is not an image.
func TestVerify(t *testing.T) {
	src := filepath.Join(t.TempDir(), "src")
	writeTree(t, src)
	cut := filepath.Join(src, "Training", "원천데이터", "레트로", "2002.jpg")
	data, err := os.ReadFile(cut)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, cut, data[:len(data)-10])
	for _, verify := range []string{VerifyFull, VerifyHeader} {
		out := filepath.Join(t.TempDir(), verify)
		sum, err := Import(Options{Src: src, Out: out, Styles: []string{"retro", "resort"}, TrainPerClass: 8, ValPerClass: 2, Verify: verify})
		if err != nil {
			t.Fatal(err)
		}
		var bad []string
		for _, k := range sum.Skipped {
			if k.Reason == SkipUnreadableImage {
				bad = k.Examples
			}
		}
		want := []string{"1105.jpg: not a supported image"}
		if verify == VerifyFull {
			want = append([]string{"2002.jpg: truncated JPEG"}, want...)
		}
		if len(bad) != len(want) {
			t.Fatalf("verify %s: unreadable images %q, want %d", verify, bad, len(want))
		}
		for i, w := range want {
			if !strings.Contains(bad[i], w) {
				t.Errorf("verify %s: unreadable image %q, want one naming %q", verify, bad[i], w)
			}
		}
	}
}
