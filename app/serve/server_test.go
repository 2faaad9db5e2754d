package serve

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kfash-tf/kfash-tf/augment/augmenttest"
	"github.com/kfash-tf/kfash-tf/graphs"
	"github.com/kfash-tf/kfash-tf/graphs/graphstest"
	"github.com/kfash-tf/kfash-tf/graphs/runs"
	"github.com/kfash-tf/kfash-tf/internal/testlog"
)

var serveTestClasses = []string{"circle", "square", "stripe"}

// serveTestModel writes a run folder whose "last" checkpoint (epoch 2)
// holds freshly initialised vgg8 weights (no training needed to serve) and
// opens it.
func serveTestModel(t *testing.T) *graphs.Servable {
	t.Helper()
	m, err := graphs.OpenServable(serveTestRun(t), "", runs.SessionConfig{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// serveTestRun writes the run folder serveTestModel opens.
func serveTestRun(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "run")
	cfg := runs.Config{Network: "vgg8", InputSize: 150, Classes: serveTestClasses, Normalize: "none",
		Std: [3]float32{1, 1, 1}, Seed: 5, Created: time.Now()}
	if _, _, err := graphstest.UntrainedRun(dir, cfg, runs.CheckpointState{Epoch: 2, Time: time.Now()}); err != nil {
		t.Fatal(err)
	}
	return dir
}

func serveTestConfig() Config {
	return Config{Name: "kfash", MaxBatch: 32, BatchWait: 2 * time.Millisecond, MaxBody: 32 << 20, MaxPixels: 50_000_000,
		ReadTimeout: 30 * time.Second, WriteTimeout: 60 * time.Second}
}

// newTestServer serves m with cfg on an httptest server.
func newTestServer(t *testing.T, m *graphs.Servable, cfg Config) (*Server, *httptest.Server, *testlog.Buffer) {
	t.Helper()
	logs := &testlog.Buffer{}
	s, err := New(m, cfg, logs)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s)
	t.Cleanup(func() {
		ts.Close()
		s.Close()
	})
	return s, ts, logs
}

// randomPixels returns n random HWC RGB 0–255 integer-valued images.
func randomPixels(n, size int, seed int64) []float32 {
	rng := rand.New(rand.NewSource(seed))
	out := make([]float32, n*size*size*3)
	for i := range out {
		out[i] = float32(rng.Intn(256))
	}
	return out
}

// pixelsJSON writes one image as [S][S][3] JSON numbers.
func pixelsJSON(px []float32, size int) string {
	var b strings.Builder
	b.WriteByte('[')
	for y := 0; y < size; y++ {
		if y > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('[')
		for x := 0; x < size; x++ {
			if x > 0 {
				b.WriteByte(',')
			}
			o := (y*size + x) * 3
			fmt.Fprintf(&b, "[%g,%g,%g]", px[o], px[o+1], px[o+2])
		}
		b.WriteByte(']')
	}
	b.WriteByte(']')
	return b.String()
}

func b64(data []byte) string { return base64.StdEncoding.EncodeToString(data) }

// post sends body to ts+path and returns the status and the body.
func post(t *testing.T, url, contentType, body string) (int, []byte) {
	t.Helper()
	resp, err := http.Post(url, contentType, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, data
}

type rowPrediction struct {
	Probabilities []float32 `json:"probabilities"`
	Classes       int       `json:"classes"`
	ClassNames    string    `json:"class_names"`
}

// predictRows posts a row-format request and decodes the predictions.
func predictRows(t *testing.T, url, body string) []rowPrediction {
	t.Helper()
	code, data := post(t, url, "application/json", body)
	if code != http.StatusOK {
		t.Fatalf("status %d: %s", code, data)
	}
	var resp struct {
		Predictions []rowPrediction `json:"predictions"`
	}
	if err := json.Unmarshal(data, &resp); err != nil {
		t.Fatalf("%v: %s", err, data)
	}
	return resp.Predictions
}

// checkRows compares predictions to n rows of want, and checks that
// classes and class_names are the argmax.
func checkRows(t *testing.T, what string, got []rowPrediction, want []float32) {
	t.Helper()
	k := len(serveTestClasses)
	if len(got)*k != len(want) {
		t.Fatalf("%s: %d predictions, want %d", what, len(got), len(want)/k)
	}
	for i, p := range got {
		for j := range p.Probabilities {
			// Batch composition may change the last bits of a convolution.
			if math.Abs(float64(p.Probabilities[j]-want[i*k+j])) > 1e-5 || len(p.Probabilities) != k {
				t.Fatalf("%s: prediction %d is %v, want %v", what, i, p.Probabilities, want[i*k:(i+1)*k])
			}
		}
		c := graphs.Argmax(want[i*k : (i+1)*k])
		if p.Classes != c || p.ClassNames != serveTestClasses[c] {
			t.Errorf("%s: prediction %d: classes %d %q, want %d %q", what, i, p.Classes, p.ClassNames, c, serveTestClasses[c])
		}
	}
}

// Row and columnar requests, pixel arrays and b64 images, keyed or not, in
// either signature, give Model.Predict's and Model.PredictBytes's answers.
func TestServePredict(t *testing.T) {
	m := serveTestModel(t)
	_, ts, logs := newTestServer(t, m, serveTestConfig())
	url := ts.URL + "/v1/models/kfash:predict"
	size := m.InputSize()
	px := randomPixels(2, size, 1)
	per := size * size * 3
	want, err := m.Predict(px, 2)
	if err != nil {
		t.Fatal(err)
	}
	a, b := pixelsJSON(px[:per], size), pixelsJSON(px[per:], size)

	checkRows(t, "row arrays", predictRows(t, url, `{"instances": [`+a+`,`+b+`]}`), want)
	checkRows(t, "row keyed arrays", predictRows(t, ts.URL+"/v1/models/kfash/versions/2:predict",
		`{"signature_name": "serving_default", "instances": [{"images": `+a+`}, {"images": `+b+`}]}`), want)

	// Columnar: {"inputs": [N][S][S][3]} and {"inputs": {"images": ...}}.
	for _, body := range []string{`{"inputs": [` + a + `,` + b + `]}`, `{"inputs": {"images": [` + a + `,` + b + `]}}`} {
		code, data := post(t, url, "application/json", body)
		if code != http.StatusOK {
			t.Fatalf("columnar: %d %s", code, data)
		}
		var resp struct {
			Outputs struct {
				Probabilities [][]float32 `json:"probabilities"`
				Classes       []int       `json:"classes"`
				ClassNames    []string    `json:"class_names"`
			} `json:"outputs"`
		}
		if err := json.Unmarshal(data, &resp); err != nil {
			t.Fatal(err)
		}
		o := resp.Outputs
		if len(o.Probabilities) != 2 || len(o.Classes) != 2 || len(o.ClassNames) != 2 {
			t.Fatalf("columnar outputs: %s", data)
		}
		var rows []rowPrediction
		for i := range o.Probabilities {
			rows = append(rows, rowPrediction{o.Probabilities[i], o.Classes[i], o.ClassNames[i]})
		}
		checkRows(t, "columnar", rows, want)
	}

	// Encoded images: the bytes path.
	files := [][]byte{augmenttest.PNG(0, 40, 1), augmenttest.JPEG(2, 300, 2)}
	wantBytes, err := m.PredictBytes(files)
	if err != nil {
		t.Fatal(err)
	}
	f0, f1 := `{"b64": "`+b64(files[0])+`"}`, `{"b64": "`+b64(files[1])+`"}`
	checkRows(t, "row b64", predictRows(t, url, `{"instances": [`+f0+`,`+f1+`]}`), wantBytes)
	checkRows(t, "row keyed b64", predictRows(t, url, `{"instances": [{"image_bytes": `+f0+`}, {"image_bytes": `+f1+`}]}`), wantBytes)
	checkRows(t, "serving_bytes", predictRows(t, url, `{"signature_name": "serving_bytes", "instances": [`+f0+`,`+f1+`]}`), wantBytes)
	code, data := post(t, url, "application/json", `{"signature_name": "serving_bytes", "inputs": {"image_bytes": [`+f0+`,`+f1+`]}}`)
	if code != http.StatusOK || !strings.Contains(string(data), `"outputs"`) {
		t.Errorf("columnar b64: %d %s", code, data)
	}
	// Arrays and b64 mixed in one request keep their order.
	mixed := append(append([]float32(nil), want[:3]...), wantBytes[3:]...)
	checkRows(t, "mixed", predictRows(t, url, `{"instances": [`+a+`,`+f1+`]}`), mixed)

	const line = "POST /v1/models/kfash:predict 200 2 images "
	if got := logs.WaitFor(line, time.Second); !strings.Contains(got, line) {
		t.Errorf("no request log line with status and image count:\n%s", got)
	}
}

func getJSON(t *testing.T, url string) (int, map[string]any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var v map[string]any
	data, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatalf("GET %s: %v: %s", url, err, data)
	}
	return resp.StatusCode, v
}

func TestServeStatusMetadataAndPages(t *testing.T) {
	m := serveTestModel(t)
	_, ts, _ := newTestServer(t, m, serveTestConfig())
	want := `{"model_version_status":[{"version":"2","state":"AVAILABLE","status":{"error_code":"OK","error_message":""}}]}`
	for _, path := range []string{"/v1/models/kfash", "/v1/models/kfash/versions/2"} {
		resp, err := http.Get(ts.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || strings.TrimSpace(string(data)) != want {
			t.Errorf("GET %s: %d %s\nwant %s", path, resp.StatusCode, data, want)
		}
	}

	for _, path := range []string{"/v1/models/kfash/metadata", "/v1/models/kfash/versions/2/metadata"} {
		code, md := getJSON(t, ts.URL+path)
		if code != 200 {
			t.Fatalf("GET %s: %d %v", path, code, md)
		}
		spec := md["model_spec"].(map[string]any)
		if spec["name"] != "kfash" || spec["version"] != "2" {
			t.Errorf("model_spec %v", spec)
		}
		sigs := md["metadata"].(map[string]any)["signature_def"].(map[string]any)["signature_def"].(map[string]any)
		def := sigs["serving_default"].(map[string]any)
		if def["method_name"] != "tensorflow/serving/predict" {
			t.Errorf("method_name %v", def["method_name"])
		}
		images := def["inputs"].(map[string]any)["images"].(map[string]any)
		var dims []string
		for _, d := range images["tensor_shape"].(map[string]any)["dim"].([]any) {
			dims = append(dims, d.(map[string]any)["size"].(string))
		}
		if images["dtype"] != "DT_FLOAT" || strings.Join(dims, ",") != "-1,150,150,3" {
			t.Errorf("images: %v", images)
		}
		outs := def["outputs"].(map[string]any)
		for key, dt := range map[string]string{"probabilities": "DT_FLOAT", "classes": "DT_INT64", "class_names": "DT_STRING"} {
			if o, ok := outs[key].(map[string]any); !ok || o["dtype"] != dt {
				t.Errorf("output %s: %v", key, outs[key])
			}
		}
		bytesSig := sigs["serving_bytes"].(map[string]any)
		if in := bytesSig["inputs"].(map[string]any)["image_bytes"].(map[string]any); in["dtype"] != "DT_STRING" {
			t.Errorf("serving_bytes input: %v", in)
		}
	}

	resp, err := http.Get(ts.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || strings.TrimSpace(string(data)) != "ok" {
		t.Errorf("/healthz: %d %q", resp.StatusCode, data)
	}

	resp, err = http.Get(ts.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	data, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	page := string(data)
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") ||
		!strings.Contains(page, `action="/v1/classify"`) || !strings.Contains(page, `name="image"`) || !strings.Contains(page, "multipart/form-data") {
		t.Errorf("GET /: %d %s\n%s", resp.StatusCode, resp.Header.Get("Content-Type"), page)
	}
	if strings.Contains(page, "http://") || strings.Contains(page, "https://") || strings.Contains(page, "//cdn") {
		t.Errorf("the form page refers to an external URL:\n%s", page)
	}
}

// Each bad request gets a 4xx JSON error naming the problem, and the
// server keeps serving.
func TestServeBadInputs(t *testing.T) {
	m := serveTestModel(t)
	cfg := serveTestConfig()
	cfg.MaxBody = 4 << 20
	_, ts, _ := newTestServer(t, m, cfg)
	predict := "/v1/models/kfash:predict"
	good := augmenttest.PNG(1, 60, 7)
	goodBody := `{"instances": [{"b64": "` + b64(good) + `"}]}`
	jpg := augmenttest.JPEG(0, 200, 3)
	small := pixelsJSON(randomPixels(1, 10, 1), 10)
	strPixels := strings.Replace(pixelsJSON(randomPixels(1, 150, 2), 150), "[", `["x",`, 1)

	var multi bytes.Buffer
	mw := multipart.NewWriter(&multi)
	fw, _ := mw.CreateFormFile("image", "notes.txt")
	fw.Write([]byte("these are not pixels"))
	mw.Close()

	cases := []struct {
		name, method, path, contentType, body string
		status                                int
		want                                  string
	}{
		{"wrong shape", "POST", predict, "", `{"instances": [` + small + `]}`, 400, "shape [10 10 3]"},
		{"wrong dtype", "POST", predict, "", `{"instances": [` + strPixels + `]}`, 400, "expected numbers"},
		{"ragged", "POST", predict, "", `{"instances": [[[1,2,3],[4,5]]]}`, 400, "ragged"},
		{"columnar rank", "POST", predict, "", `{"inputs": ` + small + `}`, 400, "shape"},
		{"invalid base64", "POST", predict, "", `{"instances": [{"b64": "not*base64!"}]}`, 400, "invalid base64"},
		{"non-image bytes", "POST", predict, "", `{"instances": [{"b64": "` + b64([]byte("hello, world")) + `"}]}`, 400, "not a supported image"},
		{"decompression bomb", "POST", predict, "", `{"instances": [{"b64": "` + b64(augmenttest.PNGBomb(20000, 20000)) + `"}]}`, 413, "20000x20000 = 400000000 pixels"},
		{"empty body", "POST", predict, "", ``, 400, "empty request body"},
		{"blank body", "POST", predict, "", "  \n", 400, "empty request body"},
		{"unknown model", "POST", "/v1/models/nope:predict", "", goodBody, 404, `model "nope" not found`},
		{"unknown model status", "GET", "/v1/models/nope", "", ``, 404, `model "nope" not found`},
		{"unknown version", "POST", "/v1/models/kfash/versions/7:predict", "", goodBody, 404, "no version 7"},
		{"unknown version metadata", "GET", "/v1/models/kfash/versions/7/metadata", "", ``, 404, "no version 7"},
		{"malformed version", "GET", "/v1/models/kfash/versions/x", "", ``, 400, "not a number"},
		{"truncated JPEG", "POST", predict, "", `{"instances": [{"b64": "` + b64(jpg[:len(jpg)/2]) + `"}]}`, 400, "truncated JPEG"},
		{"instances and inputs", "POST", predict, "", `{"instances": [` + small + `], "inputs": [` + small + `]}`, 400, `both "instances" and "inputs"`},
		{"neither", "POST", predict, "", `{"signature_name": "serving_default"}`, 400, "neither"},
		{"malformed JSON", "POST", predict, "", `{"instances": [`, 400, "malformed JSON"},
		{"empty instances", "POST", predict, "", `{"instances": []}`, 400, "empty"},
		{"instances not a list", "POST", predict, "", `{"instances": 3}`, 400, "must be a list"},
		{"number instance", "POST", predict, "", `{"instances": [3]}`, 400, "got a number"},
		{"unknown input", "POST", predict, "", `{"instances": [{"pixels": [1]}]}`, 400, `unknown input "pixels"`},
		{"unknown signature", "POST", predict, "", `{"signature_name": "train", "instances": [{"b64": "` + b64(good) + `"}]}`, 400, `unknown signature_name "train"`},
		{"arrays to serving_bytes", "POST", predict, "", `{"signature_name": "serving_bytes", "instances": [` + small + `]}`, 400, "not pixel arrays"},
		{"body too large", "POST", predict, "", `{"instances": [{"b64": "` + strings.Repeat("A", 5<<20) + `"}]}`, 413, "larger than the limit"},
		{"GET predict", "GET", predict, "", ``, 405, "method GET not allowed"},
		{"POST status", "POST", "/v1/models/kfash", "", `{}`, 405, "method POST not allowed"},
		{"classify verb", "POST", "/v1/models/kfash:classify", "", goodBody, 400, "use :predict"},
		{"unknown path", "GET", "/v2/whatever", "", ``, 404, "no such path"},
		{"unknown model subpath", "GET", "/v1/models/kfash/foo", "", ``, 404, "no such path"},
		{"classify JSON", "POST", "/v1/classify", "application/json", goodBody, 415, "multipart/form-data"},
		{"classify text file", "POST", "/v1/classify", mw.FormDataContentType(), multi.String(), 400, "notes.txt: not a supported image"},
	}
	for _, c := range cases {
		req, err := http.NewRequest(c.method, ts.URL+c.path, strings.NewReader(c.body))
		if err != nil {
			t.Fatal(err)
		}
		ct := c.contentType
		if ct == "" {
			ct = "application/json"
		}
		req.Header.Set("Content-Type", ct)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		data, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var e struct {
			Error string `json:"error"`
		}
		jerr := json.Unmarshal(data, &e)
		if resp.StatusCode != c.status || jerr != nil || !strings.Contains(e.Error, c.want) || resp.Header.Get("Content-Type") != "application/json" {
			t.Errorf("%s: %d %q (%s), want %d with an error containing %q", c.name, resp.StatusCode, data, resp.Header.Get("Content-Type"), c.status, c.want)
		}
		// The next good request still works.
		if code, data := post(t, ts.URL+predict, "application/json", goodBody); code != 200 {
			t.Fatalf("after %s: good request got %d %s", c.name, code, data)
		}
	}
}

// 16 concurrent requests share model runs, and each gets its own rows.
func TestServeBatchesConcurrentRequests(t *testing.T) {
	m := serveTestModel(t)
	cfg := serveTestConfig()
	cfg.BatchWait = 300 * time.Millisecond // ample time for all 16 to queue
	s, ts, _ := newTestServer(t, m, cfg)
	const n = 16
	size := m.InputSize()
	per := size * size * 3
	px := randomPixels(n, size, 11)
	want := make([][]float32, n)
	for i := range want {
		p, err := m.Predict(px[i*per:(i+1)*per], 1)
		if err != nil {
			t.Fatal(err)
		}
		want[i] = p
	}
	runs0, _ := s.Runs()
	var wg sync.WaitGroup
	got := make([][]rowPrediction, n)
	errs := make([]error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			body := `{"instances": [` + pixelsJSON(px[i*per:(i+1)*per], size) + `]}`
			resp, err := http.Post(ts.URL+"/v1/models/kfash:predict", "application/json", strings.NewReader(body))
			if err != nil {
				errs[i] = err
				return
			}
			defer resp.Body.Close()
			var r struct {
				Predictions []rowPrediction `json:"predictions"`
			}
			if err := json.NewDecoder(resp.Body).Decode(&r); err != nil || resp.StatusCode != 200 {
				errs[i] = fmt.Errorf("status %d: %v", resp.StatusCode, err)
			}
			got[i] = r.Predictions
		}(i)
	}
	wg.Wait()
	for i := 0; i < n; i++ {
		if errs[i] != nil {
			t.Fatalf("request %d: %v", i, errs[i])
		}
		checkRows(t, fmt.Sprintf("request %d", i), got[i], want[i])
	}
	runs, images := s.Runs()
	runs -= runs0
	t.Logf("%d requests in %d model runs (%d images in all)", n, runs, images)
	if runs >= n {
		t.Errorf("%d concurrent requests took %d model runs: not batched", n, runs)
	}
}

func TestServeClassifyMultipart(t *testing.T) {
	m := serveTestModel(t)
	_, ts, _ := newTestServer(t, m, serveTestConfig())
	files := map[string][]byte{"a.png": augmenttest.PNG(0, 80, 1), "b.jpg": augmenttest.JPEG(1, 500, 2)}
	names := []string{"a.png", "b.jpg"}
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	mw.WriteField("comment", "ignored")
	for _, n := range names {
		fw, err := mw.CreateFormFile("image", n)
		if err != nil {
			t.Fatal(err)
		}
		fw.Write(files[n])
	}
	mw.Close()
	code, data := post(t, ts.URL+"/v1/classify", mw.FormDataContentType(), body.String())
	if code != 200 {
		t.Fatalf("%d %s", code, data)
	}
	var results []struct {
		File          string             `json:"file"`
		Class         string             `json:"class"`
		Probabilities map[string]float32 `json:"probabilities"`
	}
	if err := json.Unmarshal(data, &results); err != nil {
		t.Fatal(err)
	}
	want, err := m.PredictBytes([][]byte{files[names[0]], files[names[1]]})
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != 2 {
		t.Fatalf("%d results: %s", len(results), data)
	}
	k := len(serveTestClasses)
	for i, r := range results {
		if r.File != names[i] || r.Class != serveTestClasses[graphs.Argmax(want[i*k:(i+1)*k])] {
			t.Errorf("result %d: %+v", i, r)
		}
		for j, c := range serveTestClasses {
			if math.Abs(float64(r.Probabilities[c]-want[i*k+j])) > 1e-5 {
				t.Errorf("result %d: %s = %v, want %v", i, c, r.Probabilities[c], want[i*k+j])
			}
		}
	}
	// The probabilities keep the model's class order, not an alphabetical one.
	if !strings.Contains(string(data), `"probabilities":{"circle":`) {
		t.Errorf("probabilities not in class order: %s", data)
	}
}

// Shutting down lets a request in flight (waiting in the batcher) finish,
// then refuses connections.
func TestServeShutdownFinishesInFlight(t *testing.T) {
	m := serveTestModel(t)
	cfg := serveTestConfig()
	cfg.BatchWait = 500 * time.Millisecond // the request waits in the batcher while we shut down
	s, ln, cancel, served := serveOnLoopback(t, m, cfg)
	defer cancel()
	url := "http://" + ln.Addr().String() + "/v1/models/kfash:predict"

	type answer struct {
		code int
		body []byte
		err  error
		at   time.Time
	}
	answered := make(chan answer, 1)
	go func() {
		body := `{"instances": [{"b64": "` + b64(augmenttest.PNG(2, 50, 4)) + `"}]}`
		resp, err := http.Post(url, "application/json", strings.NewReader(body))
		if err != nil {
			answered <- answer{err: err}
			return
		}
		defer resp.Body.Close()
		data, err := io.ReadAll(resp.Body)
		answered <- answer{code: resp.StatusCode, body: data, err: err, at: time.Now()}
	}()
	deadline := time.Now().Add(10 * time.Second)
	for s.batch.queued.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the request never reached the batcher")
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel() // as SIGTERM does
	var stopped time.Time
	select {
	case err := <-served:
		stopped = time.Now()
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Serve did not return after the shutdown")
	}
	a := <-answered
	if a.err != nil || a.code != 200 || !bytes.Contains(a.body, []byte(`"predictions"`)) {
		t.Fatalf("in-flight request: %d %s %v", a.code, a.body, a.err)
	}
	if a.at.After(stopped) {
		t.Errorf("Serve returned before the in-flight request was answered")
	}
	if resp, err := http.Post(url, "application/json", strings.NewReader(`{}`)); err == nil {
		resp.Body.Close()
		t.Error("the server still accepts requests after shutdown")
	}
	if runs, _ := s.Runs(); runs != 1 {
		t.Errorf("%d model runs, want 1", runs)
	}
}

// fakeModel answers image i with probabilities [first pixel, 0, 0] and
// fails images whose first pixel is negative.
type fakeModel struct {
	per   int
	mu    sync.Mutex
	sizes []int
}

func (f *fakeModel) Predict(images []float32, n int) ([]float32, error) {
	f.mu.Lock()
	f.sizes = append(f.sizes, n)
	f.mu.Unlock()
	out := make([]float32, 0, 3*n)
	for i := 0; i < n; i++ {
		v := images[i*f.per]
		if v < 0 {
			return nil, errors.New("bad image")
		}
		out = append(out, v, 0, 0)
	}
	return out, nil
}

func (f *fakeModel) PredictBytes(images [][]byte) ([]float32, error) {
	out := make([]float32, 0, 3*len(images))
	for _, b := range images {
		out = append(out, float32(len(b)), 0, 0)
	}
	return out, nil
}

// The batcher splits requests larger than a batch, never exceeds
// --max-batch, and a failing request fails alone.
func TestBatcher(t *testing.T) {
	f := &fakeModel{per: 2}
	b := newBatcher(f, 3, 2, 4, 50*time.Millisecond)
	defer b.Close()
	ctx := context.Background()
	var wg sync.WaitGroup
	results := make([][]float32, 6)
	errs := make([]error, 6)
	for r := 0; r < 6; r++ {
		wg.Add(1)
		go func(r int) {
			defer wg.Done()
			n := 1 + r%3 // 1, 2 or 3 images
			if r == 5 {
				n = 9 // larger than a batch
			}
			px := make([]float32, 2*n)
			for i := 0; i < n; i++ {
				px[2*i] = float32(100*r + i)
			}
			if r == 3 {
				px[0] = -1
			}
			results[r], errs[r] = b.PredictPixels(ctx, px, n)
		}(r)
	}
	wg.Wait()
	for r := 0; r < 6; r++ {
		if r == 3 {
			if errs[r] == nil {
				t.Error("the bad request succeeded")
			}
			continue
		}
		if errs[r] != nil {
			t.Fatalf("request %d failed with its bad neighbour: %v", r, errs[r])
		}
		for i := 0; i < len(results[r])/3; i++ {
			if results[r][3*i] != float32(100*r+i) {
				t.Errorf("request %d row %d = %v", r, i, results[r][3*i:3*i+3])
			}
		}
	}
	for _, n := range f.sizes {
		if n > 4 {
			t.Errorf("a run of %d images with --max-batch 4", n)
		}
	}
	got, err := b.PredictEncoded(ctx, [][]byte{[]byte("ab"), []byte("abcd")})
	if err != nil || len(got) != 6 || got[0] != 2 || got[3] != 4 {
		t.Errorf("PredictEncoded = %v, %v", got, err)
	}
	b.Close()
	if _, err := b.PredictPixels(ctx, []float32{1, 2}, 1); !errors.Is(err, errBatcherClosed) {
		t.Errorf("after Close: %v", err)
	}
}

// A SavedModel written by `kfash-tf export` decodes b64 images in its graph
// (serving_bytes): the server batches the encoded images, and bad ones
// still fail alone with a 4xx.
func TestServeExportedSavedModel(t *testing.T) {
	bin := os.Getenv("KFASH_TF_BIN")
	if bin == "" {
		t.Skip("KFASH_TF_BIN is not set (make test sets it)")
	}
	run := serveTestRun(t)
	export := filepath.Join(t.TempDir(), "export")
	if out, err := exec.Command(bin, "export", run, "--out", export).CombinedOutput(); err != nil {
		t.Skipf("kfash-tf export failed (no exporter in this build?): %v\n%s", err, out)
	}
	m, err := graphs.OpenServable(export, "", runs.SessionConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if !m.DecodesInGraph() {
		t.Fatal("the exported model has no serving_bytes signature")
	}
	cfg := serveTestConfig()
	cfg.BatchWait = 200 * time.Millisecond
	s, ts, _ := newTestServer(t, m, cfg)
	url := ts.URL + "/v1/models/kfash:predict"
	const n = 6
	files := make([][]byte, n)
	for i := range files {
		if i%2 == 0 {
			files[i] = augmenttest.JPEG(i%3, 120+40*i, int64(i))
		} else {
			files[i] = augmenttest.PNG(i%3, 60+30*i, int64(i))
		}
	}
	want, err := m.PredictBytes(files)
	if err != nil {
		t.Fatal(err)
	}
	k := len(serveTestClasses)
	runs0, _ := s.Runs()
	var wg sync.WaitGroup
	got := make([][]rowPrediction, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			code, data := post(t, url, "application/json", `{"instances": [{"b64": "`+b64(files[i])+`"}]}`)
			var r struct {
				Predictions []rowPrediction `json:"predictions"`
			}
			if code != 200 || json.Unmarshal(data, &r) != nil {
				t.Errorf("request %d: %d %s", i, code, data)
			}
			got[i] = r.Predictions
		}(i)
	}
	wg.Wait()
	for i := 0; i < n; i++ {
		checkRows(t, fmt.Sprintf("request %d", i), got[i], want[i*k:(i+1)*k])
	}
	if runs, _ := s.Runs(); runs-runs0 >= n {
		t.Errorf("%d concurrent requests took %d model runs: not batched", n, runs-runs0)
	}

	jpg := files[0]
	for _, c := range []struct {
		name, body string
		status     int
		want       string
	}{
		{"truncated JPEG", `{"instances": [{"b64": "` + b64(jpg[:len(jpg)/2]) + `"}]}`, 400, "could not decode"},
		{"decompression bomb", `{"instances": [{"b64": "` + b64(augmenttest.PNGBomb(20000, 20000)) + `"}]}`, 413, "400000000 pixels"},
		{"non-image", `{"instances": [{"b64": "` + b64([]byte("GIF8 but not really")) + `"}]}`, 400, "image 0"},
		// GIF bombs never reach TensorFlow's decoder, which decompresses
		// every frame whatever the logical screen says (it used to answer
		// 200 after taking 1.5 GB).
		{"GIF frame outside its 1x1 screen", `{"instances": [{"b64": "` + b64(gifWithFrames(1, 1, [4]int{0, 0, 20000, 20000})) + `"}]}`, 400, "outside the 1x1 logical screen"},
		{"GIF of 100 large frames", `{"instances": [{"b64": "` + b64(gifWithFrames(3000, 3000, repeatFrame([4]int{0, 0, 3000, 3000}, 100)...)) + `"}]}`, 413, "(--max-pixels)"},
	} {
		code, data := post(t, url, "application/json", c.body)
		if code != c.status || !strings.Contains(string(data), c.want) {
			t.Errorf("%s: %d %s, want %d with %q", c.name, code, data, c.status, c.want)
		}
	}
	// An export carries the explain signature: explained predictions are
	// the model's, with a decodable overlay.
	code, data := post(t, url, "application/json", `{"explain": true, "instances": [{"b64": "`+b64(files[1])+`"}]}`)
	var explained struct {
		Predictions []explainedRow `json:"predictions"`
	}
	if code != http.StatusOK || json.Unmarshal(data, &explained) != nil || len(explained.Predictions) != 1 || explained.Predictions[0].Explanation == nil {
		t.Errorf("explain on an export: %d %.300s, want 200 with an explanation", code, data)
	} else if e := explained.Predictions[0].Explanation; e.ClassName == "" || e.OverlayB64 == "" {
		t.Errorf("explain on an export: explanation %+v", e)
	} else {
		// The explain graph takes pixels, so the image is decoded in Go.
		px, err := m.DecodeImage(files[1])
		if err != nil {
			t.Fatal(err)
		}
		goWant, err := m.Predict(px, 1)
		if err != nil {
			t.Fatal(err)
		}
		checkRows(t, "explained export", []rowPrediction{explained.Predictions[0].rowPrediction}, goWant)
	}
	// A good request still works, alone and next to a bad one in flight.
	var bad sync.WaitGroup
	bad.Add(1)
	go func() {
		defer bad.Done()
		post(t, url, "application/json", `{"instances": [{"b64": "`+b64(jpg[:len(jpg)/2])+`"}]}`)
	}()
	checkRows(t, "after bad inputs", predictRows(t, url, `{"instances": [{"b64": "`+b64(files[1])+`"}]}`), want[k:2*k])
	bad.Wait()
}

// serveOnLoopback runs Serve for a server of m on a free loopback port, as
// the serve command does (a real listener, so a shutdown closes it); cancel
// starts the shutdown, and served gets Serve's result.
func serveOnLoopback(t *testing.T, m *graphs.Servable, cfg Config) (*Server, net.Listener, context.CancelFunc, <-chan error) {
	t.Helper()
	s, err := New(m, cfg, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx, ln) }()
	return s, ln, cancel, served
}
