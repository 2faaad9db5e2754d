// This file holds the parsing of K-Fashion JSON labels: image info, style,
// sub-style and garment boxes, read in parallel by readLabels.

package kfashion

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/text/unicode/norm"
)

// labelFile is what the importer keeps of one label file.
type labelFile struct {
	entry    *entry
	err      error  // why the file is unreadable
	id       string // 이미지 식별자
	fileStem string // stem of 이미지 파일명
	style    string // 스타일[0].스타일, "" when none
	subStyle string // 스타일[0].서브스타일
	width    float64
	height   float64
	boxes    []box
}

// box is a garment box in label pixels.
type box struct{ X, Y, W, H float64 }

// flexNumber is a JSON number that also accepts a numeric string; anything
// else reads as 0, so one odd field does not make a label unreadable.
type flexNumber float64

// UnmarshalJSON implements json.Unmarshaler.
func (f *flexNumber) UnmarshalJSON(b []byte) error {
	s := strings.Trim(strings.TrimSpace(string(b)), `"`)
	v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		v = 0
	}
	*f = flexNumber(v)
	return nil
}

// labelJSON is the part of a K-Fashion label the importer reads.
type labelJSON struct {
	Image *struct {
		ID     json.RawMessage `json:"이미지 식별자"`
		File   json.RawMessage `json:"이미지 파일명"`
		Width  flexNumber      `json:"이미지 너비"`
		Height flexNumber      `json:"이미지 높이"`
	} `json:"이미지 정보"`
	Dataset *struct {
		Detail struct {
			Rects    map[string]json.RawMessage `json:"렉트좌표"`
			Labeling struct {
				Style json.RawMessage `json:"스타일"`
			} `json:"라벨링"`
		} `json:"데이터셋 상세설명"`
	} `json:"데이터셋 정보"`
}

type boxJSON struct {
	X flexNumber `json:"X좌표"`
	Y flexNumber `json:"Y좌표"`
	W flexNumber `json:"가로"`
	H flexNumber `json:"세로"`
}

// parseLabel reads a label file's content. Fields of an unexpected
// type are ignored; only invalid JSON or a document with neither 이미지 정보
// nor 데이터셋 정보 is an error.
func parseLabel(data []byte) (*labelFile, error) {
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	var doc labelJSON
	if err := json.Unmarshal(data, &doc); err != nil {
		var te *json.UnmarshalTypeError
		if !errors.As(err, &te) {
			return nil, fmt.Errorf("invalid JSON: %w", err)
		}
	}
	if doc.Image == nil && doc.Dataset == nil {
		return nil, errors.New("not a K-Fashion label (no 이미지 정보 or 데이터셋 정보)")
	}
	l := &labelFile{}
	if doc.Image != nil {
		l.id = jsonScalar(doc.Image.ID)
		if f := strings.ReplaceAll(jsonScalar(doc.Image.File), "\\", "/"); f != "" {
			base := norm.NFC.String(path.Base(f))
			l.fileStem = strings.TrimSuffix(base, path.Ext(base))
		}
		l.width, l.height = float64(doc.Image.Width), float64(doc.Image.Height)
	}
	if doc.Dataset != nil {
		l.style, l.subStyle = parseStyle(doc.Dataset.Detail.Labeling.Style)
		for _, raw := range doc.Dataset.Detail.Rects {
			for _, b := range parseBoxes(raw) {
				if b.W > 0 && b.H > 0 {
					l.boxes = append(l.boxes, box{float64(b.X), float64(b.Y), float64(b.W), float64(b.H)})
				}
			}
		}
	}
	return l, nil
}

// parseStyle returns 스타일[0].스타일 and 스타일[0].서브스타일. A lone
// object or a plain string instead of the list is accepted too.
func parseStyle(raw json.RawMessage) (style, sub string) {
	if len(raw) == 0 {
		return "", ""
	}
	var list []map[string]json.RawMessage
	if json.Unmarshal(raw, &list) != nil {
		var one map[string]json.RawMessage
		if json.Unmarshal(raw, &one) != nil {
			return jsonScalar(raw), ""
		}
		list = append(list, one)
	}
	if len(list) == 0 {
		return "", ""
	}
	return jsonScalar(list[0]["스타일"]), jsonScalar(list[0]["서브스타일"])
}

// parseBoxes reads one garment's boxes: a list of boxes (the usual
// form, [{}] for none) or a lone box.
func parseBoxes(raw json.RawMessage) []boxJSON {
	var list []boxJSON
	if json.Unmarshal(raw, &list) == nil {
		return list
	}
	var one boxJSON
	if json.Unmarshal(raw, &one) == nil {
		return []boxJSON{one}
	}
	return nil
}

// jsonScalar returns a JSON string's value or a number's text (integral
// floats without their fraction: 1234.0 → "1234"); "" for anything else.
func jsonScalar(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return strings.TrimSpace(s)
	}
	var n json.Number
	if json.Unmarshal(raw, &n) != nil {
		return ""
	}
	if f, err := n.Float64(); err == nil && f == math.Trunc(f) && math.Abs(f) < 1e15 {
		return strconv.FormatInt(int64(f), 10)
	}
	return n.String()
}

// readLabels parses every label file, in parallel.
func (im *importer) readLabels() error {
	entries := im.src.labels
	im.labels = make([]*labelFile, len(entries))
	var mu sync.Mutex
	done := 0
	return parallelFor(im.o.Workers, len(entries), func(i int) error {
		e := entries[i]
		data, err := e.readAll(maxLabelBytes)
		var l *labelFile
		if err == nil {
			l, err = parseLabel(data)
		}
		if err != nil {
			l = &labelFile{err: err}
		} else if st, ok := LookupStyle(l.style); !ok || !slices.Contains(im.settings.Styles, st.English) {
			l.boxes = nil // only the imported styles are cropped: keep memory low on the full download
		}
		l.entry = e
		im.labels[i] = l
		mu.Lock()
		done++
		n := done
		mu.Unlock()
		im.progress(StageLabels, n, len(entries))
		return nil
	})
}
