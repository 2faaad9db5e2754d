package serve

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"image/png"
	"math"
	"net/http"
	"strings"
	"testing"

	"github.com/kfash-tf/kfash-tf/augment/augmenttest"
	"github.com/kfash-tf/kfash-tf/internal/heatmap"
)

// explainedRow is a row of an answer to `"explain": true`.
type explainedRow struct {
	rowPrediction
	Explanation *struct {
		ClassName   string  `json:"class_name"`
		Probability float32 `json:"probability"`
		OverlayB64  string  `json:"overlay_b64"`
	} `json:"explanation"`
}

// `"explain": true` adds to each prediction of a run folder a decodable
// overlay PNG of the expected size, naming the predicted class; without it
// the answer has no explanation; explained images count twice against
// --max-instances.
func TestServeExplain(t *testing.T) {
	m := serveTestModel(t)
	cfg := serveTestConfig()
	cfg.MaxInstances = 5
	_, ts, _ := newTestServer(t, m, cfg)
	url := ts.URL + "/v1/models/kfash:predict"
	size := m.InputSize()
	px := randomPixels(1, size, 3)
	jpg := augmenttest.JPEG(1, 200, 4)
	decoded, err := m.DecodeImage(jpg)
	if err != nil {
		t.Fatal(err)
	}
	want, err := m.Predict(append(append([]float32(nil), px...), decoded...), 2)
	if err != nil {
		t.Fatal(err)
	}
	instances := `[` + pixelsJSON(px, size) + `, {"b64": "` + b64(jpg) + `"}]`

	code, data := post(t, url, "application/json", `{"explain": true, "instances": `+instances+`}`)
	if code != http.StatusOK {
		t.Fatalf("explain: %d %s", code, data)
	}
	var resp struct {
		Predictions []explainedRow `json:"predictions"`
	}
	if err := json.Unmarshal(data, &resp); err != nil {
		t.Fatal(err)
	}
	rows := make([]rowPrediction, len(resp.Predictions))
	w, h := heatmap.OverlaySize(size, 2)
	for i, r := range resp.Predictions {
		rows[i] = r.rowPrediction
		e := r.Explanation
		if e == nil {
			t.Fatalf("row %d has no explanation: %s", i, data)
		}
		if e.ClassName != r.ClassNames || math.Abs(float64(e.Probability-r.Probabilities[r.Classes])) > 1e-6 {
			t.Errorf("row %d explains %s %v, predicted %s %v", i, e.ClassName, e.Probability, r.ClassNames, r.Probabilities)
		}
		raw, err := base64.StdEncoding.DecodeString(e.OverlayB64)
		if err != nil {
			t.Fatalf("row %d: %v", i, err)
		}
		img, err := png.Decode(bytes.NewReader(raw))
		if err != nil {
			t.Fatalf("row %d: overlay is not a PNG: %v", i, err)
		}
		if got := img.Bounds().Size(); got.X != w || got.Y != h {
			t.Errorf("row %d: overlay is %v, want %d×%d", i, got, w, h)
		}
	}
	checkRows(t, "explained", rows, want)

	// Without explain: the same predictions, and no explanation key.
	code, data = post(t, url, "application/json", `{"instances": `+instances+`}`)
	if code != http.StatusOK || strings.Contains(string(data), "explanation") {
		t.Fatalf("without explain: %d %s", code, data)
	}
	checkRows(t, "not explained", predictRows(t, url, `{"explain": false, "instances": `+instances+`}`), want)

	// Columnar: one explanation per image.
	code, data = post(t, url, "application/json", `{"explain": true, "inputs": [{"b64": "`+b64(jpg)+`"}, {"b64": "`+b64(jpg)+`"}]}`)
	var cols struct {
		Outputs struct {
			ClassNames  []string `json:"class_names"`
			Explanation []struct {
				ClassName string `json:"class_name"`
			} `json:"explanation"`
		} `json:"outputs"`
	}
	if code != http.StatusOK || json.Unmarshal(data, &cols) != nil || len(cols.Outputs.Explanation) != 2 ||
		cols.Outputs.Explanation[1].ClassName != cols.Outputs.ClassNames[1] {
		t.Errorf("columnar explain: %d %.300s", code, data)
	}

	// 3 explained images count 6 > 5; 3 predicted ones are fine.
	three := `[` + strings.Repeat(pixelsJSON(px, size)+`,`, 2) + pixelsJSON(px, size) + `]`
	if code, data := post(t, url, "application/json", `{"explain": true, "instances": `+three+`}`); code != http.StatusRequestEntityTooLarge || !strings.Contains(string(data), "--max-instances") {
		t.Errorf("3 explained images with --max-instances 5: %d %s", code, data)
	}
	if code, data := post(t, url, "application/json", `{"instances": `+three+`}`); code != http.StatusOK {
		t.Errorf("3 images with --max-instances 5: %d %s", code, data)
	}
}
