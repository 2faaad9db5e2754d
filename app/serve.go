package app

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"log"
	"mime"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/kfash-tf/kfash-tf/augment"
	"github.com/kfash-tf/kfash-tf/graphs"
)

// Signature names and keys of the serving contract (see graphs.OpenModel).
const (
	serveSigDefault    = "serving_default"
	serveSigBytes      = "serving_bytes"
	serveKeyImages     = "images"
	serveKeyImageBytes = "image_bytes"
	maxTensorRank      = 8 // deeper JSON arrays are refused before recursing further
	classifyField      = "image"
)

// ServeConfig configures a Server.
type ServeConfig struct {
	Name            string        // the model name in URLs (/v1/models/NAME)
	MaxBatch        int           // images per model run
	BatchWait       time.Duration // how long the first request of a batch waits for company
	MaxBody         int64         // bytes per request body
	MaxPixels       int64         // pixels per encoded image, checked on its header
	ReadTimeout     time.Duration // reading a whole request
	WriteTimeout    time.Duration // from the end of the headers to the end of the response
	ShutdownTimeout time.Duration // how long a shutdown waits for requests in flight
}

func (c ServeConfig) validate() error {
	switch {
	case c.Name == "" || strings.ContainsAny(c.Name, "/:?#"):
		return fmt.Errorf("invalid model name %q: use letters, digits, '-' and '_'", c.Name)
	case c.MaxBatch < 1:
		return fmt.Errorf("--max-batch must be at least 1, got %d", c.MaxBatch)
	case c.BatchWait < 0:
		return fmt.Errorf("--batch-wait must not be negative, got %s", c.BatchWait)
	case c.MaxBody < 1:
		return fmt.Errorf("--max-body must be positive, got %d", c.MaxBody)
	case c.MaxPixels < 1:
		return fmt.Errorf("--max-pixels must be positive, got %d", c.MaxPixels)
	}
	return nil
}

// Server serves one graphs.Model over TensorFlow Serving's REST API
// (status, metadata, :predict in row and columnar formats), plus
// /v1/classify for multipart uploads, a small HTML form at / and /healthz.
// Predictions of concurrent requests are batched on one goroutine.
type Server struct {
	cfg     ServeConfig
	model   *graphs.Model
	classes []string
	size    int
	batch   *batcher
	log     *log.Logger
	// decoding holds a token per image being decoded in Go.
	decoding chan struct{}
}

// NewServer prepares a server for m and starts its batching goroutine; it
// sets m's decoding limit to cfg.MaxPixels. Serve runs it; Close (or the
// end of Serve) stops the batcher. The caller closes m afterwards.
func NewServer(m *graphs.Model, cfg ServeConfig, logw io.Writer) (*Server, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = 30 * time.Second
	}
	m.Decode.MaxPixels = cfg.MaxPixels
	s := &Server{cfg: cfg, model: m, classes: m.Classes(), size: m.InputSize(), log: log.New(logw, "", log.LstdFlags|log.Lmicroseconds),
		decoding: make(chan struct{}, runtime.GOMAXPROCS(0))}
	s.batch = newBatcher(m, len(s.classes), s.size*s.size*3, cfg.MaxBatch, cfg.BatchWait)
	return s, nil
}

// Runs returns how many times the model has run and on how many images.
func (s *Server) Runs() (runs, images int64) { return s.batch.runs.Load(), s.batch.images.Load() }

// Close stops the batcher after the work queued. Requests still arriving get
// 503; Serve calls it itself.
func (s *Server) Close() { s.batch.Close() }

// Serve answers requests on ln until ctx is done, then shuts down
// gracefully: it stops accepting, lets the requests in flight finish (for up
// to ShutdownTimeout), then stops the batcher.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s,
		ReadTimeout:       s.cfg.ReadTimeout,
		ReadHeaderTimeout: min(s.cfg.ReadTimeout, 10*time.Second),
		WriteTimeout:      s.cfg.WriteTimeout,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          s.log,
	}
	if s.cfg.ReadTimeout <= 0 {
		srv.ReadHeaderTimeout = 10 * time.Second
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		s.Close()
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	err := srv.Shutdown(sctx)
	if err != nil {
		err = fmt.Errorf("requests still running after %s: %w", s.cfg.ShutdownTimeout, err)
		srv.Close()
	}
	<-errc // http.ErrServerClosed
	s.Close()
	return err
}

// requestLog records what a request's log line reports.
type requestLog struct {
	http.ResponseWriter
	status int
	images int
}

func (l *requestLog) WriteHeader(code int) {
	if l.status == 0 {
		l.status = code
	}
	l.ResponseWriter.WriteHeader(code)
}

func (l *requestLog) Write(p []byte) (int, error) {
	if l.status == 0 {
		l.status = http.StatusOK
	}
	return l.ResponseWriter.Write(p)
}

// ServeHTTP routes a request and logs one line for it.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rec := &requestLog{ResponseWriter: w}
	s.route(rec, r)
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	s.log.Printf("%s %s %d %d images %.1fms", r.Method, r.URL.Path, rec.status, rec.images, float64(time.Since(start).Microseconds())/1000)
}

// httpError is an error with the HTTP status it answers with.
type httpError struct {
	status int
	msg    string
	image  int    // for an error about one image: its index, and
	detail string // the message without "image N: "
}

func (e *httpError) Error() string { return e.msg }

func httpErrorf(status int, format string, args ...any) *httpError {
	return &httpError{status: status, msg: fmt.Sprintf(format, args...), image: -1}
}

func (s *Server) route(w *requestLog, r *http.Request) {
	path := r.URL.Path
	switch {
	case path == "/":
		if allowMethod(w, r, http.MethodGet) {
			s.handleIndex(w)
		}
	case path == "/healthz":
		if allowMethod(w, r, http.MethodGet) {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			io.WriteString(w, "ok\n")
		}
	case path == "/v1/classify":
		if allowMethod(w, r, http.MethodPost) {
			s.handleClassify(w, r)
		}
	case strings.HasPrefix(path, "/v1/models/"):
		s.routeModel(w, r, strings.TrimPrefix(path, "/v1/models/"))
	default:
		respondError(w, httpErrorf(http.StatusNotFound, "no such path %s: try /v1/models/%s, /v1/models/%s:predict, /v1/classify or /", path, s.cfg.Name, s.cfg.Name))
	}
}

// allowMethod answers 405 unless r uses method (GET also allows HEAD).
func allowMethod(w http.ResponseWriter, r *http.Request, method string) bool {
	if r.Method == method || (method == http.MethodGet && r.Method == http.MethodHead) {
		return true
	}
	w.Header().Set("Allow", method)
	respondError(w, httpErrorf(http.StatusMethodNotAllowed, "method %s not allowed on %s: use %s", r.Method, r.URL.Path, method))
	return false
}

// routeModel handles NAME[/versions/N][/metadata] and NAME[/versions/N]:VERB.
func (s *Server) routeModel(w *requestLog, r *http.Request, rest string) {
	verb := ""
	if i := strings.LastIndexByte(rest, ':'); i >= 0 {
		rest, verb = rest[:i], rest[i+1:]
	}
	segs := strings.Split(rest, "/")
	name, segs := segs[0], segs[1:]
	if name != s.cfg.Name {
		respondError(w, httpErrorf(http.StatusNotFound, "model %q not found: this server serves %q", name, s.cfg.Name))
		return
	}
	if len(segs) >= 2 && segs[0] == "versions" {
		v, err := strconv.ParseInt(segs[1], 10, 64)
		if err != nil {
			respondError(w, httpErrorf(http.StatusBadRequest, "version %q is not a number", segs[1]))
			return
		}
		if v != s.model.Version() {
			respondError(w, httpErrorf(http.StatusNotFound, "model %q has no version %d: it serves version %d", name, v, s.model.Version()))
			return
		}
		segs = segs[2:]
	} else if len(segs) >= 2 && segs[0] == "labels" {
		respondError(w, httpErrorf(http.StatusNotFound, "version labels are not supported: use /v1/models/%s or /versions/%d", name, s.model.Version()))
		return
	}
	metadata := len(segs) == 1 && segs[0] == "metadata"
	if len(segs) > 1 || (len(segs) == 1 && !metadata) || (metadata && verb != "") {
		respondError(w, httpErrorf(http.StatusNotFound, "no such path %s", r.URL.Path))
		return
	}
	switch {
	case verb == "predict":
		if allowMethod(w, r, http.MethodPost) {
			s.handlePredict(w, r)
		}
	case verb == "classify" || verb == "regress":
		respondError(w, httpErrorf(http.StatusBadRequest, ":%s needs a %s signature; this model has predict signatures only: use :predict", verb, verb))
	case verb != "":
		respondError(w, httpErrorf(http.StatusNotFound, "unknown method :%s: use :predict", verb))
	case metadata:
		if allowMethod(w, r, http.MethodGet) {
			respondJSON(w, http.StatusOK, s.metadata())
		}
	default:
		if allowMethod(w, r, http.MethodGet) {
			respondJSON(w, http.StatusOK, s.status())
		}
	}
}

// status is TensorFlow Serving's GetModelStatus response.
func (s *Server) status() any {
	type status struct {
		ErrorCode    string `json:"error_code"`
		ErrorMessage string `json:"error_message"`
	}
	type versionStatus struct {
		Version string `json:"version"`
		State   string `json:"state"`
		Status  status `json:"status"`
	}
	return map[string]any{"model_version_status": []versionStatus{{
		Version: strconv.FormatInt(s.model.Version(), 10), State: "AVAILABLE", Status: status{ErrorCode: "OK"},
	}}}
}

// metadata is TensorFlow Serving's GetModelMetadata response: the
// SignatureDefs in protobuf's JSON mapping (int64 sizes as strings).
func (s *Server) metadata() any {
	type dim struct {
		Size string `json:"size"`
		Name string `json:"name"`
	}
	type shape struct {
		Dim         []dim `json:"dim"`
		UnknownRank bool  `json:"unknown_rank"`
	}
	type tensor struct {
		DType       string `json:"dtype"`
		TensorShape shape  `json:"tensor_shape"`
		Name        string `json:"name"`
	}
	type signature struct {
		Inputs     map[string]tensor `json:"inputs"`
		Outputs    map[string]tensor `json:"outputs"`
		MethodName string            `json:"method_name"`
		Defaults   map[string]any    `json:"defaults"`
	}
	conv := func(in map[string]graphs.ModelTensor) map[string]tensor {
		out := map[string]tensor{}
		for k, t := range in {
			sh := shape{Dim: []dim{}, UnknownRank: t.Shape == nil}
			for _, d := range t.Shape {
				sh.Dim = append(sh.Dim, dim{Size: strconv.FormatInt(d, 10)})
			}
			out[k] = tensor{DType: t.DTypeName(), TensorShape: sh, Name: t.Name}
		}
		return out
	}
	sigs := map[string]signature{}
	for name, sig := range s.model.Signatures() {
		sigs[name] = signature{Inputs: conv(sig.Inputs), Outputs: conv(sig.Outputs), MethodName: sig.MethodName, Defaults: map[string]any{}}
	}
	return map[string]any{
		"model_spec": map[string]any{"name": s.cfg.Name, "signature_name": "", "version": strconv.FormatInt(s.model.Version(), 10)},
		"metadata":   map[string]any{"signature_def": map[string]any{"signature_def": sigs}},
	}
}

// imageInput is one image of a request: pixels (S×S×3 floats) or encoded
// bytes.
type imageInput struct {
	pixels  []float32
	encoded []byte
}

// predictRequest is the body of :predict. The raw messages stay nil when
// their key is absent.
type predictRequest struct {
	SignatureName string          `json:"signature_name"`
	Instances     json.RawMessage `json:"instances"`
	Inputs        json.RawMessage `json:"inputs"`
}

func (s *Server) handlePredict(w *requestLog, r *http.Request) {
	body, herr := s.readBody(w, r)
	if herr != nil {
		respondError(w, herr)
		return
	}
	if len(bytes.TrimSpace(body)) == 0 {
		respondError(w, httpErrorf(http.StatusBadRequest, `empty request body: send {"instances": [...]} (row format) or {"inputs": ...} (columnar format)`))
		return
	}
	var req predictRequest
	if err := json.Unmarshal(body, &req); err != nil {
		respondError(w, httpErrorf(http.StatusBadRequest, "malformed JSON request: %v", err))
		return
	}
	hasInstances, hasInputs := req.Instances != nil, req.Inputs != nil
	switch {
	case hasInstances && hasInputs:
		respondError(w, httpErrorf(http.StatusBadRequest, `the request has both "instances" and "inputs": send one (row or columnar format), not both`))
		return
	case !hasInstances && !hasInputs:
		respondError(w, httpErrorf(http.StatusBadRequest, `the request has neither "instances" (row format) nor "inputs" (columnar format)`))
		return
	}
	sig := req.SignatureName
	if sig == "" {
		sig = serveSigDefault
	}
	if sig != serveSigDefault && sig != serveSigBytes {
		respondError(w, httpErrorf(http.StatusBadRequest, "unknown signature_name %q: this model serves %s and %s", req.SignatureName, serveSigDefault, serveSigBytes))
		return
	}
	var images []imageInput
	if hasInstances {
		images, herr = s.parseInstances(req.Instances, sig)
	} else {
		images, herr = s.parseInputs(req.Inputs, sig)
	}
	if herr != nil {
		respondError(w, herr)
		return
	}
	w.images = len(images)
	probs, herr := s.predict(r.Context(), images)
	if herr != nil {
		respondError(w, herr)
		return
	}
	k := len(s.classes)
	if hasInstances {
		type row struct {
			Probabilities []float32 `json:"probabilities"`
			Classes       int64     `json:"classes"`
			ClassNames    string    `json:"class_names"`
		}
		rows := make([]row, len(images))
		for i := range rows {
			p := probs[i*k : (i+1)*k]
			c := graphs.Argmax(p)
			rows[i] = row{Probabilities: p, Classes: int64(c), ClassNames: s.classes[c]}
		}
		respondJSON(w, http.StatusOK, map[string]any{"predictions": rows})
		return
	}
	type columns struct {
		Probabilities [][]float32 `json:"probabilities"`
		Classes       []int64     `json:"classes"`
		ClassNames    []string    `json:"class_names"`
	}
	var out columns
	for i := range images {
		p := probs[i*k : (i+1)*k]
		c := graphs.Argmax(p)
		out.Probabilities = append(out.Probabilities, p)
		out.Classes = append(out.Classes, int64(c))
		out.ClassNames = append(out.ClassNames, s.classes[c])
	}
	respondJSON(w, http.StatusOK, map[string]any{"outputs": out})
}

// readBody reads a request body within MaxBody.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, *httpError) {
	if r.ContentLength > s.cfg.MaxBody {
		return nil, s.tooLarge(r.ContentLength)
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBody))
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return nil, s.tooLarge(-1)
	}
	if err != nil {
		return nil, httpErrorf(http.StatusBadRequest, "reading the request body: %v", err)
	}
	return body, nil
}

func (s *Server) tooLarge(n int64) *httpError {
	if n >= 0 {
		return httpErrorf(http.StatusRequestEntityTooLarge, "request body of %d bytes is larger than the limit of %d bytes (--max-body)", n, s.cfg.MaxBody)
	}
	return httpErrorf(http.StatusRequestEntityTooLarge, "request body is larger than the limit of %d bytes (--max-body)", s.cfg.MaxBody)
}

// parseInstances reads the row format: one image per instance, as a pixel
// array, {"b64": ...}, or an object keyed by the input's name.
func (s *Server) parseInstances(raw json.RawMessage, sig string) ([]imageInput, *httpError) {
	var instances []json.RawMessage
	if err := json.Unmarshal(raw, &instances); err != nil || instances == nil {
		return nil, httpErrorf(http.StatusBadRequest, `"instances" must be a list of images, got %s`, jsonKind(raw))
	}
	if len(instances) == 0 {
		return nil, httpErrorf(http.StatusBadRequest, `"instances" is empty: send at least one image`)
	}
	images := make([]imageInput, len(instances))
	for i, inst := range instances {
		img, herr := s.parseImage(inst, sig, "")
		if herr != nil {
			herr.msg = fmt.Sprintf("instance %d: %s", i, herr.msg)
			return nil, herr
		}
		images[i] = img
	}
	return images, nil
}

// parseImage reads one image: a [S][S][3] pixel array, {"b64": ...}, or
// (when key is "", i.e. not already inside a named input)
// {"images": [...]} / {"image_bytes": {"b64": ...}}.
func (s *Server) parseImage(raw json.RawMessage, sig, key string) (imageInput, *httpError) {
	switch firstByte(raw) {
	case '[':
		if sig == serveSigBytes || key == serveKeyImageBytes {
			return imageInput{}, httpErrorf(http.StatusBadRequest, `signature %s takes encoded images as {"b64": "..."}, not pixel arrays`, sig)
		}
		vals, shape, err := parseNumbers(raw, s.size*s.size*3)
		if err != nil {
			return imageInput{}, httpErrorf(http.StatusBadRequest, "%v", err)
		}
		if len(shape) != 3 || shape[0] != s.size || shape[1] != s.size || shape[2] != 3 {
			return imageInput{}, httpErrorf(http.StatusBadRequest, "image of shape %v; %s takes [%d][%d][3] (height, width, RGB 0–255), or an encoded image as {\"b64\": \"...\"}", shape, serveSigDefault, s.size, s.size)
		}
		return imageInput{pixels: vals}, nil
	case '{':
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(raw, &obj); err != nil {
			return imageInput{}, httpErrorf(http.StatusBadRequest, "%v", err)
		}
		if b64, ok := obj["b64"]; ok {
			if len(obj) != 1 {
				return imageInput{}, httpErrorf(http.StatusBadRequest, `a {"b64": ...} object must have no other keys`)
			}
			data, herr := decodeB64(b64)
			if herr != nil {
				return imageInput{}, herr
			}
			return imageInput{encoded: data}, nil
		}
		if key != "" || len(obj) != 1 {
			return imageInput{}, httpErrorf(http.StatusBadRequest, "expected one input, %q, got an object with keys %s", s.inputKey(sig), objectKeys(obj))
		}
		for k, v := range obj {
			if k != serveKeyImages && k != serveKeyImageBytes {
				return imageInput{}, httpErrorf(http.StatusBadRequest, "unknown input %q: signature %s takes %q", k, sig, s.inputKey(sig))
			}
			if sig == serveSigBytes && k == serveKeyImages {
				return imageInput{}, httpErrorf(http.StatusBadRequest, `signature %s takes %q ({"b64": ...}), not %q`, sig, serveKeyImageBytes, serveKeyImages)
			}
			return s.parseImage(v, sig, k)
		}
	case '"':
		return imageInput{}, httpErrorf(http.StatusBadRequest, `binary values must be sent as {"b64": "..."}, not as a plain string`)
	}
	return imageInput{}, httpErrorf(http.StatusBadRequest, "expected an image ([%d][%d][3] numbers or {\"b64\": \"...\"}), got %s", s.size, s.size, jsonKind(raw))
}

func (s *Server) inputKey(sig string) string {
	if sig == serveSigBytes {
		return serveKeyImageBytes
	}
	return serveKeyImages
}

// parseInputs reads the columnar format: the batch of the signature's one
// input, as [N][S][S][3] numbers or a list of {"b64": ...}, either directly
// or keyed by the input's name.
func (s *Server) parseInputs(raw json.RawMessage, sig string) ([]imageInput, *httpError) {
	key := ""
	if firstByte(raw) == '{' {
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(raw, &obj); err != nil {
			return nil, httpErrorf(http.StatusBadRequest, "%v", err)
		}
		if _, ok := obj["b64"]; ok {
			img, herr := s.parseImage(raw, sig, serveKeyImageBytes)
			if herr != nil {
				return nil, herr
			}
			return []imageInput{img}, nil
		}
		if len(obj) != 1 {
			return nil, httpErrorf(http.StatusBadRequest, "\"inputs\": expected one input, %q, got keys %s", s.inputKey(sig), objectKeys(obj))
		}
		for k, v := range obj {
			if k != serveKeyImages && k != serveKeyImageBytes {
				return nil, httpErrorf(http.StatusBadRequest, "unknown input %q: signature %s takes %q", k, sig, s.inputKey(sig))
			}
			if sig == serveSigBytes && k == serveKeyImages {
				return nil, httpErrorf(http.StatusBadRequest, `signature %s takes %q ({"b64": ...}), not %q`, sig, serveKeyImageBytes, serveKeyImages)
			}
			key, raw = k, v
		}
	}
	if firstByte(raw) != '[' {
		return nil, httpErrorf(http.StatusBadRequest, "\"inputs\" must be a batch of images ([N][%d][%d][3] numbers or a list of {\"b64\": ...}), got %s", s.size, s.size, jsonKind(raw))
	}
	// A list of encoded images, or one tensor of pixels?
	var first json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.Token() // '['
	if dec.More() {
		if err := dec.Decode(&first); err != nil {
			return nil, httpErrorf(http.StatusBadRequest, "\"inputs\": %v", err)
		}
	}
	if firstByte(first) == '{' || firstByte(first) == '"' {
		var items []json.RawMessage
		if err := json.Unmarshal(raw, &items); err != nil {
			return nil, httpErrorf(http.StatusBadRequest, "\"inputs\": %v", err)
		}
		images := make([]imageInput, len(items))
		for i, it := range items {
			if firstByte(it) != '{' && firstByte(it) != '"' {
				return nil, httpErrorf(http.StatusBadRequest, "\"inputs\" item %d: expected {\"b64\": ...} like the first one, got %s", i, jsonKind(it))
			}
			img, herr := s.parseImage(it, sig, serveKeyImageBytes)
			if herr != nil {
				herr.msg = fmt.Sprintf("\"inputs\" item %d: %s", i, herr.msg)
				return nil, herr
			}
			images[i] = img
		}
		return images, nil
	}
	if sig == serveSigBytes || key == serveKeyImageBytes {
		return nil, httpErrorf(http.StatusBadRequest, `signature %s takes encoded images as a list of {"b64": "..."}, not pixel arrays`, sig)
	}
	vals, shape, err := parseNumbers(raw, 0)
	if err != nil {
		return nil, httpErrorf(http.StatusBadRequest, "\"inputs\": %v", err)
	}
	if len(shape) != 4 || shape[1] != s.size || shape[2] != s.size || shape[3] != 3 {
		return nil, httpErrorf(http.StatusBadRequest, "\"inputs\" has shape %v; %s takes [N][%d][%d][3] (images, height, width, RGB 0–255)", shape, serveSigDefault, s.size, s.size)
	}
	per := s.size * s.size * 3
	images := make([]imageInput, shape[0])
	for i := range images {
		images[i] = imageInput{pixels: vals[i*per : (i+1)*per : (i+1)*per]}
	}
	return images, nil
}

// decodeB64 reads a {"b64": ...} value: standard base64, padded or not
// (URL-safe accepted too, as some clients send it).
func decodeB64(raw json.RawMessage) ([]byte, *httpError) {
	var str string
	if err := json.Unmarshal(raw, &str); err != nil {
		return nil, httpErrorf(http.StatusBadRequest, `"b64" must be a string of base64, got %s`, jsonKind(raw))
	}
	str = strings.TrimRight(str, "=")
	enc := base64.RawStdEncoding
	if strings.ContainsAny(str, "-_") {
		enc = base64.RawURLEncoding
	}
	data, err := enc.DecodeString(str)
	if err != nil {
		return nil, httpErrorf(http.StatusBadRequest, "invalid base64 in \"b64\": %v", err)
	}
	if len(data) == 0 {
		return nil, httpErrorf(http.StatusBadRequest, `empty "b64" value: no image`)
	}
	return data, nil
}

// predict runs the images through the batcher. Encoded images are checked
// and decoded here, on the request's goroutine, so that decoding (the
// costliest step for photos) runs on every core while the batcher's
// goroutine runs the model: decoded to pixels in Go, or, for a model that
// decodes them in its graph, only header-checked (format, pixel limit).
func (s *Server) predict(ctx context.Context, images []imageInput) ([]float32, *httpError) {
	var pixels []float32
	var pixIdx, encIdx []int
	var encoded [][]byte
	for i, img := range images {
		if img.encoded == nil {
			pixIdx = append(pixIdx, i)
			continue
		}
		format, err := s.model.CheckImage(img.encoded)
		if err != nil {
			return nil, imageError(i, err)
		}
		if s.model.CanDecodeInGraph(format) {
			encIdx = append(encIdx, i)
			encoded = append(encoded, img.encoded)
			continue
		}
		px, err := s.decode(ctx, img.encoded)
		if err != nil {
			if errors.Is(err, ctx.Err()) {
				return nil, s.runError(err, false)
			}
			return nil, imageError(i, err)
		}
		images[i].pixels = px
		pixIdx = append(pixIdx, i)
	}
	if len(pixIdx) == 1 {
		pixels = images[pixIdx[0]].pixels
	} else {
		for _, i := range pixIdx {
			pixels = append(pixels, images[i].pixels...)
		}
	}
	k := len(s.classes)
	probs := make([]float32, len(images)*k)
	if len(pixIdx) > 0 {
		p, err := s.batch.PredictPixels(ctx, pixels, len(pixIdx))
		if err != nil {
			return nil, s.runError(err, false)
		}
		for j, i := range pixIdx {
			copy(probs[i*k:(i+1)*k], p[j*k:(j+1)*k])
		}
	}
	if len(encIdx) > 0 {
		p, err := s.batch.PredictEncoded(ctx, encoded)
		if err != nil {
			return nil, s.runError(err, true)
		}
		for j, i := range encIdx {
			copy(probs[i*k:(i+1)*k], p[j*k:(j+1)*k])
		}
	}
	return probs, nil
}

// decode decodes one image in Go, at most one per core at a time: beyond
// that, more decodes in parallel only add memory (a decoded photo is
// megabytes) and take CPU from the model.
func (s *Server) decode(ctx context.Context, data []byte) ([]float32, error) {
	select {
	case s.decoding <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-s.decoding }()
	return s.model.DecodeImage(data)
}

// imageError is the 4xx for an encoded image that cannot be used.
func imageError(i int, err error) *httpError {
	msg := strings.TrimPrefix(err.Error(), "augment: ")
	e := &httpError{status: http.StatusBadRequest, image: i}
	switch {
	case errors.Is(err, augment.ErrTooLarge):
		e.status, e.detail = http.StatusRequestEntityTooLarge, msg+" (--max-pixels)"
	case errors.Is(err, augment.ErrNotImage):
		e.detail = msg
	default:
		e.detail = "cannot decode: " + msg
	}
	e.msg = fmt.Sprintf("image %d: %s", i, e.detail)
	return e
}

// runError maps a batcher failure: shutdown is 503, a client gone is
// logged as 499 (nginx's convention; nobody reads it), a failed in-graph
// decode is the request's fault (the batcher reran it alone), anything
// else is the server's.
func (s *Server) runError(err error, encoded bool) *httpError {
	switch {
	case errors.Is(err, errBatcherClosed):
		return httpErrorf(http.StatusServiceUnavailable, "%v", err)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return httpErrorf(499, "request cancelled: %v", err)
	case encoded:
		// TensorFlow appends the failing nodes on further lines: noise to a
		// client.
		msg, _, _ := strings.Cut(err.Error(), "\n")
		return httpErrorf(http.StatusBadRequest, "the model could not decode the images: %s", msg)
	}
	return httpErrorf(http.StatusInternalServerError, "prediction failed: %v", err)
}

// classifyResult is one file's answer of /v1/classify.
type classifyResult struct {
	File          string       `json:"file"`
	Class         string       `json:"class"`
	Probabilities orderedProbs `json:"probabilities"`
}

// orderedProbs is a class → probability object whose keys keep the
// model's class order (a Go map would sort them).
type orderedProbs struct {
	names []string
	probs []float32
}

func (o orderedProbs) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, n := range o.names {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(n)
		v, err := json.Marshal(o.probs[i])
		if err != nil {
			return nil, err
		}
		b.Write(k)
		b.WriteByte(':')
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// handleClassify answers a multipart/form-data upload of one or more files
// in the field "image" with one result per file.
func (s *Server) handleClassify(w *requestLog, r *http.Request) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/form-data" {
		respondError(w, httpErrorf(http.StatusUnsupportedMediaType, "send multipart/form-data with the image files in the field %q (got Content-Type %q)", classifyField, r.Header.Get("Content-Type")))
		return
	}
	if r.ContentLength > s.cfg.MaxBody {
		respondError(w, s.tooLarge(r.ContentLength))
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxBody)
	mr, err := r.MultipartReader()
	if err != nil {
		respondError(w, httpErrorf(http.StatusBadRequest, "reading the multipart body: %v", err))
		return
	}
	var names []string
	var images []imageInput
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			respondError(w, s.tooLarge(-1))
			return
		}
		if err != nil {
			respondError(w, httpErrorf(http.StatusBadRequest, "reading the multipart body: %v", err))
			return
		}
		if part.FormName() != classifyField {
			io.Copy(io.Discard, part)
			continue
		}
		data, err := io.ReadAll(part)
		if errors.As(err, &mbe) {
			respondError(w, s.tooLarge(-1))
			return
		}
		if err != nil {
			respondError(w, httpErrorf(http.StatusBadRequest, "reading %q: %v", part.FileName(), err))
			return
		}
		name := part.FileName()
		if name == "" {
			name = fmt.Sprintf("image %d", len(names))
		}
		if len(data) == 0 {
			respondError(w, httpErrorf(http.StatusBadRequest, "%s: empty file", name))
			return
		}
		names = append(names, name)
		images = append(images, imageInput{encoded: data})
	}
	if len(images) == 0 {
		respondError(w, httpErrorf(http.StatusBadRequest, "no file in the form field %q", classifyField))
		return
	}
	w.images = len(images)
	probs, herr := s.predict(r.Context(), images)
	if herr != nil {
		if herr.image >= 0 {
			herr.msg = names[herr.image] + ": " + herr.detail // the file, not its index
		}
		respondError(w, herr)
		return
	}
	k := len(s.classes)
	out := make([]classifyResult, len(images))
	for i := range out {
		p := probs[i*k : (i+1)*k]
		out[i] = classifyResult{File: names[i], Class: s.classes[graphs.Argmax(p)], Probabilities: orderedProbs{names: s.classes, probs: p}}
	}
	respondJSON(w, http.StatusOK, out)
}

// indexPage is the form at /: self-contained (no external URL), it posts
// to /v1/classify and shows the answers as a table, or as plain JSON
// without JavaScript.
var indexPage = template.Must(template.New("index").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{.Name}} · kfash-tf</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font-family:system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem;color:#222}
table{border-collapse:collapse;margin-top:1rem}td,th{border:1px solid #ccc;padding:.3rem .6rem;text-align:left}
.err{color:#b00}code{background:#f3f3f3;padding:0 .2rem}
</style></head><body>
<h1>{{.Name}}</h1>
<p>{{.Description}}. Classes: {{range $i, $c := .Classes}}{{if $i}}, {{end}}<code>{{$c}}</code>{{end}}.</p>
<form id="f" method="post" action="/v1/classify" enctype="multipart/form-data">
<input type="file" name="image" accept="image/*" multiple required>
<button type="submit">Classify</button>
</form>
<div id="out"></div>
<p>REST: <code>POST /v1/models/{{.Name}}:predict</code> with <code>{"instances": [{"b64": "..."}]}</code>.</p>
<script>
document.getElementById('f').addEventListener('submit', async function (e) {
  e.preventDefault();
  var out = document.getElementById('out');
  out.textContent = 'classifying…';
  try {
    var resp = await fetch('/v1/classify', {method: 'POST', body: new FormData(this)});
    var data = await resp.json();
    out.textContent = '';
    if (!resp.ok) { var p = document.createElement('p'); p.className = 'err'; p.textContent = data.error; out.appendChild(p); return; }
    var t = document.createElement('table'), h = t.insertRow();
    ['file', 'class'].concat(Object.keys(data[0].probabilities)).forEach(function (c) { var th = document.createElement('th'); th.textContent = c; h.appendChild(th); });
    data.forEach(function (r) {
      var row = t.insertRow();
      row.insertCell().textContent = r.file;
      row.insertCell().textContent = r['class'];
      Object.values(r.probabilities).forEach(function (p) { row.insertCell().textContent = p.toFixed(3); });
    });
    out.appendChild(t);
  } catch (err) { out.textContent = String(err); }
});
</script>
</body></html>
`))

func (s *Server) handleIndex(w http.ResponseWriter) {
	var buf bytes.Buffer
	err := indexPage.Execute(&buf, map[string]any{"Name": s.cfg.Name, "Description": s.model.Description(), "Classes": s.classes})
	if err != nil {
		respondError(w, httpErrorf(http.StatusInternalServerError, "rendering the page: %v", err))
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Write(buf.Bytes())
}

func respondJSON(w http.ResponseWriter, status int, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		data, _ = json.Marshal(map[string]string{"error": "encoding the response: " + err.Error()})
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(data, '\n'))
}

func respondError(w http.ResponseWriter, e *httpError) {
	respondJSON(w, e.status, map[string]string{"error": e.msg})
}

func firstByte(raw []byte) byte {
	for _, c := range raw {
		switch c {
		case ' ', '\t', '\n', '\r':
			continue
		}
		return c
	}
	return 0
}

// jsonKind names the JSON type of raw, for error messages.
func jsonKind(raw []byte) string {
	switch c := firstByte(raw); {
	case c == '[':
		return "a list"
	case c == '{':
		return "an object"
	case c == '"':
		return "a string"
	case c == 't' || c == 'f':
		return "a boolean"
	case c == 'n':
		return "null"
	case c == 0:
		return "nothing"
	default:
		return "a number"
	}
}

func objectKeys(obj map[string]json.RawMessage) string {
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, strconv.Quote(k))
	}
	if len(keys) == 0 {
		return "none"
	}
	sort.Strings(keys)
	return strings.Join(keys, ", ")
}

// parseNumbers reads a rectangular nested JSON array of numbers into
// float32 values (row-major) and its shape, without building a []any tree:
// an image is tens of thousands of numbers. sizeHint preallocates.
func parseNumbers(data []byte, sizeHint int) ([]float32, []int, error) {
	p := numParser{data: data, leaf: -1, vals: make([]float32, 0, sizeHint)}
	for i := range p.dims {
		p.dims[i] = -1
	}
	if err := p.value(0); err != nil {
		return nil, nil, err
	}
	p.skipSpace()
	if p.pos != len(p.data) {
		return nil, nil, fmt.Errorf("unexpected %q after the array", p.data[p.pos])
	}
	if p.leaf <= 0 {
		return nil, nil, errors.New("expected an array of numbers")
	}
	return p.vals, append([]int(nil), p.dims[:p.leaf]...), nil
}

type numParser struct {
	data []byte
	pos  int
	vals []float32
	dims [maxTensorRank]int // length of the arrays at each depth; -1 until known
	leaf int                // depth of the numbers; -1 until the first one
}

func (p *numParser) skipSpace() {
	for p.pos < len(p.data) {
		switch p.data[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

func (p *numParser) value(depth int) error {
	p.skipSpace()
	if p.pos >= len(p.data) {
		return errors.New("unexpected end of the array")
	}
	if p.data[p.pos] != '[' {
		return p.number(depth)
	}
	if p.leaf >= 0 && depth >= p.leaf {
		return fmt.Errorf("ragged array: a list where a number was expected (at depth %d)", depth)
	}
	if depth >= maxTensorRank {
		return fmt.Errorf("array nested deeper than %d levels", maxTensorRank)
	}
	p.pos++
	p.skipSpace()
	if p.pos < len(p.data) && p.data[p.pos] == ']' {
		return fmt.Errorf("empty list at depth %d", depth)
	}
	count := 0
	for {
		if err := p.value(depth + 1); err != nil {
			return err
		}
		count++
		p.skipSpace()
		if p.pos >= len(p.data) {
			return errors.New("unexpected end of the array")
		}
		c := p.data[p.pos]
		p.pos++
		if c == ']' {
			break
		}
		if c != ',' {
			return fmt.Errorf("unexpected %q in an array", c)
		}
	}
	switch d := p.dims[depth]; {
	case d < 0:
		p.dims[depth] = count
	case d != count:
		return fmt.Errorf("ragged array: lists of %d and %d elements at depth %d", d, count, depth)
	}
	return nil
}

// number reads one JSON number as a float32; a fast path takes the plain
// small integers pixel arrays are made of.
func (p *numParser) number(depth int) error {
	if p.leaf < 0 {
		p.leaf = depth
	} else if depth != p.leaf {
		return fmt.Errorf("ragged array: a number where a list was expected (at depth %d)", depth)
	}
	start := p.pos
	v, plain := 0, true
	for p.pos < len(p.data) {
		c := p.data[p.pos]
		if c >= '0' && c <= '9' {
			v = v*10 + int(c-'0')
		} else if c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E' {
			plain = false
		} else {
			break
		}
		p.pos++
	}
	tok := p.data[start:p.pos]
	if len(tok) == 0 {
		return fmt.Errorf("expected numbers (float32 pixels), found %s", jsonKind(p.data[start:]))
	}
	if plain && len(tok) <= 9 {
		p.vals = append(p.vals, float32(v))
		return nil
	}
	f, err := strconv.ParseFloat(string(tok), 32)
	if err != nil {
		return fmt.Errorf("%q is not a float32 number", tok)
	}
	p.vals = append(p.vals, float32(f))
	return nil
}

func serveCommand() *cli.Command {
	return &cli.Command{
		Name:      "serve",
		Usage:     "serve a run or an exported SavedModel over HTTP, compatible with TensorFlow Serving's REST API",
		ArgsUsage: "MODEL",
		Description: "MODEL is a run folder (runs/NAME, its best checkpoint) or a SavedModel (EXPORT/<N>, or EXPORT\n" +
			"for its highest version). Endpoints:\n" +
			"  POST /v1/models/NAME[/versions/N]:predict   {\"instances\": [...]} or {\"inputs\": ...}; images as\n" +
			"       [S][S][3] RGB 0–255 numbers or {\"b64\": \"<JPEG/PNG bytes>\"}\n" +
			"  GET  /v1/models/NAME[/versions/N][/metadata] status and signatures\n" +
			"  POST /v1/classify   multipart upload (field \"image\"), for people; GET / is a form for it\n" +
			"  GET  /healthz\n" +
			"Concurrent requests are batched: up to --max-batch images, waiting at most --batch-wait.\n" +
			"SIGINT/SIGTERM stop accepting, finish the requests in flight, then exit.\n\n" +
			"Example:\n  kfash-tf serve runs/cs3 --port 8501\n" +
			"  curl -d '{\"instances\": [{\"b64\": \"'$(base64 -w0 photo.jpg)'\"}]}' localhost:8501/v1/models/kfash:predict",
		Flags: []cli.Flag{
			&cli.IntFlag{Name: "port", Value: 8501, Usage: "TCP port (0: any free port)"},
			&cli.StringFlag{Name: "host", Value: "127.0.0.1", Usage: "address to listen on (0.0.0.0: every interface)"},
			&cli.StringFlag{Name: "name", Value: "kfash", Usage: "model name in the URLs"},
			&cli.StringFlag{Name: "checkpoint", Value: "best", Usage: "checkpoint of a run folder: best (falls back to last) or last"},
			&cli.IntFlag{Name: "max-batch", Value: 32, Usage: "images per model run"},
			&cli.DurationFlag{Name: "batch-wait", Value: 5 * time.Millisecond, Usage: "how long a request waits for others to share its batch (0: only those already queued)"},
			&cli.StringFlag{Name: "max-body", Value: "32MB", Usage: "largest request body (B, KB, MB, GB: powers of 1024)"},
			&cli.Float64Flag{Name: "max-pixels", Value: float64(augment.DefaultMaxPixels), Usage: "largest encoded image, width × height, checked on its header before decoding"},
			&cli.DurationFlag{Name: "read-timeout", Value: 30 * time.Second, Usage: "time to read a whole request"},
			&cli.DurationFlag{Name: "write-timeout", Value: 60 * time.Second, Usage: "time to answer a request once read"},
			&cli.IntFlag{Name: "intra-op-threads", Value: 0, Usage: "threads inside one TensorFlow op (0: the core count)"},
			&cli.IntFlag{Name: "inter-op-threads", Value: 0, Usage: "TensorFlow ops run in parallel (0: TensorFlow's default)"},
			&cli.StringFlag{Name: "device", Usage: "cpu or gpu: pin the placement (default: TensorFlow's choice)"},
		},
		Action: func(c *cli.Context) error {
			if c.Args().Len() != 1 {
				return fmt.Errorf("serve needs one MODEL: a run folder or a SavedModel, e.g. kfash-tf serve runs/cs3")
			}
			maxBody, err := parseByteSize(c.String("max-body"))
			if err != nil {
				return fmt.Errorf("--max-body: %w", err)
			}
			mp := c.Float64("max-pixels")
			if mp < 1 || mp > 1e15 {
				return fmt.Errorf("--max-pixels must be between 1 and 1e15, got %g", mp)
			}
			cfg := ServeConfig{
				Name: c.String("name"), MaxBatch: c.Int("max-batch"), BatchWait: c.Duration("batch-wait"),
				MaxBody: maxBody, MaxPixels: int64(mp),
				ReadTimeout: c.Duration("read-timeout"), WriteTimeout: c.Duration("write-timeout"),
			}
			if err := cfg.validate(); err != nil {
				return err
			}
			sc := graphs.SessionConfig{IntraOpThreads: c.Int("intra-op-threads"), InterOpThreads: c.Int("inter-op-threads"), Device: c.String("device")}
			return runServe(c.Context, c.Args().First(), c.String("checkpoint"), sc, cfg, net.JoinHostPort(c.String("host"), strconv.Itoa(c.Int("port"))), c.App.ErrWriter)
		},
	}
}

// runServe loads the model, listens on addr and serves until SIGINT/SIGTERM.
func runServe(ctx context.Context, path, checkpoint string, sc graphs.SessionConfig, cfg ServeConfig, addr string, logw io.Writer) error {
	m, err := graphs.OpenModel(path, checkpoint, sc)
	if err != nil {
		return err
	}
	defer m.Close()
	s, err := NewServer(m, cfg, logw)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		s.Close()
		return fmt.Errorf("listening on %s: %w", addr, err)
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		// After the first signal, a second one kills at once (the
		// default action, restored by stop).
		<-ctx.Done()
		stop()
	}()
	fmt.Fprintf(logw, "serving %s as %q version %d: %d classes (%s), %d×%d input\n",
		m.Description(), cfg.Name, m.Version(), len(s.classes), strings.Join(s.classes, ", "), s.size, s.size)
	fmt.Fprintf(logw, "listening on http://%s (POST /v1/models/%s:predict, GET / for a form)\n", ln.Addr(), cfg.Name)
	err = s.Serve(ctx, ln)
	runs, images := s.Runs()
	fmt.Fprintf(logw, "stopped: %d images in %d model runs\n", images, runs)
	return err
}

// parseByteSize reads sizes such as 32MB, 512KB, 1GB or 1048576 (units
// are powers of 1024; MiB-style spellings are accepted too).
func parseByteSize(s string) (int64, error) {
	t := strings.ToUpper(strings.TrimSpace(s))
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"GIB", 1 << 30}, {"MIB", 1 << 20}, {"KIB", 1 << 10}, {"GB", 1 << 30}, {"MB", 1 << 20}, {"KB", 1 << 10}, {"G", 1 << 30}, {"M", 1 << 20}, {"K", 1 << 10}, {"B", 1}} {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.mult
			break
		}
	}
	v, err := strconv.ParseFloat(t, 64)
	if err != nil || v <= 0 || v*float64(mult) > 1<<40 {
		return 0, fmt.Errorf("invalid size %q: use e.g. 32MB, 512KB or a byte count", s)
	}
	return int64(v * float64(mult)), nil
}
