package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

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

// Defaults of the per-request limits (see serveCommand's --help for why).
const (
	// DefaultMaxInstances is the most images in one request: 8 batches of
	// 32, a few seconds of CPU for a 150×150 network, well within
	// DefaultRequestTimeout. TensorFlow Serving sets no such limit; a
	// 2,000-image request used to take 2.5 GB and 50 s.
	DefaultMaxInstances = 256
	// DefaultMaxRequestPixels bounds the sum of the pixels the headers of a
	// request's encoded images declare: 100 megapixels, about eight 12-MP
	// photos. TensorFlow's in-graph decoder holds up to 3 bytes a pixel of
	// a batch's images at once, so a request costs at most ~300 MB there.
	DefaultMaxRequestPixels = 100_000_000
	// DefaultRequestTimeout bounds a request from its arrival to its
	// answer; it is shorter than the default --write-timeout (60 s) so that
	// the client reads a 504 instead of a cut connection.
	DefaultRequestTimeout = 30 * time.Second
	// DefaultShutdownTimeout is the grace period of a shutdown.
	DefaultShutdownTimeout = 30 * time.Second
)

// ServeConfig configures a Server. Zero limits take the Default values.
type ServeConfig struct {
	Name             string        // the model name in URLs (/v1/models/NAME)
	MaxBatch         int           // images per model run
	BatchWait        time.Duration // how long the first request of a batch waits for company
	MaxBody          int64         // bytes per request body
	MaxPixels        int64         // pixels per encoded image (GIF: all frames), checked on its headers
	MaxInstances     int           // images per request
	MaxRequestPixels int64         // sum of the header-declared pixels of a request's encoded images
	MaxGIFFrames     int           // frames per GIF (0: augment.DefaultMaxGIFFrames)
	ReadTimeout      time.Duration // reading a whole request
	WriteTimeout     time.Duration // from the end of the headers to the end of the response
	RequestTimeout   time.Duration // from the arrival of a request to its answer
	ShutdownTimeout  time.Duration // how long a shutdown waits for requests in flight
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
	case c.MaxInstances < 0:
		return fmt.Errorf("--max-instances must be positive, got %d", c.MaxInstances)
	case c.MaxRequestPixels < 0:
		return fmt.Errorf("--max-request-pixels must be positive, got %d", c.MaxRequestPixels)
	case c.MaxGIFFrames < 0:
		return fmt.Errorf("--max-gif-frames must be positive, got %d", c.MaxGIFFrames)
	case c.ReadTimeout < 0 || c.WriteTimeout < 0 || c.RequestTimeout < 0 || c.ShutdownTimeout < 0:
		return fmt.Errorf("timeouts must not be negative")
	case c.WriteTimeout > 0 && c.RequestTimeout >= c.WriteTimeout:
		return fmt.Errorf("--request-timeout (%s) must be shorter than --write-timeout (%s): a request still running at the write timeout loses its answer", c.RequestTimeout, c.WriteTimeout)
	}
	return nil
}

// withDefaults fills the zero limits.
func (c ServeConfig) withDefaults() ServeConfig {
	if c.MaxInstances == 0 {
		c.MaxInstances = DefaultMaxInstances
	}
	if c.MaxRequestPixels == 0 {
		c.MaxRequestPixels = DefaultMaxRequestPixels
	}
	if c.MaxGIFFrames == 0 {
		c.MaxGIFFrames = augment.DefaultMaxGIFFrames
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = DefaultRequestTimeout
		if c.WriteTimeout > 0 && c.WriteTimeout <= c.RequestTimeout {
			c.RequestTimeout = c.WriteTimeout * 9 / 10
		}
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = DefaultShutdownTimeout
	}
	return c
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
	// inFlight counts the requests whose handler has started and not
	// returned: the ones a shutdown must finish.
	inFlight atomic.Int64
}

// InFlight returns how many requests are being handled.
func (s *Server) InFlight() int64 { return s.inFlight.Load() }

// NewServer prepares a server for m and starts its batching goroutine; it
// sets m's decoding limits (MaxPixels, MaxGIFFrames). Serve runs it; Close
// (or the end of Serve) stops the batcher. The caller closes m afterwards.
func NewServer(m *graphs.Model, cfg ServeConfig, logw io.Writer) (*Server, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	m.Decode.MaxPixels = cfg.MaxPixels
	m.MaxGIFFrames = cfg.MaxGIFFrames
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

// errShuttingDown is the cause of the cancellation of the requests still
// running at the end of a shutdown's grace period.
var errShuttingDown = errors.New("the server is shutting down")

// Serve answers requests on ln until ctx is done, then shuts down
// gracefully: it stops accepting, lets the requests in flight and those
// already accepted finish for up to ShutdownTimeout, cancels those still
// running shortly before its end (they get a 503 rather than a cut
// connection), then stops the batcher. It returns nil after a clean
// shutdown.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	base, cancelBase := context.WithCancelCause(context.Background())
	defer cancelBase(nil)
	srv := &http.Server{
		Handler:           s,
		ReadTimeout:       s.cfg.ReadTimeout,
		ReadHeaderTimeout: min(s.cfg.ReadTimeout, 10*time.Second),
		WriteTimeout:      s.cfg.WriteTimeout,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          s.log,
		BaseContext:       func(net.Listener) context.Context { return base },
	}
	if s.cfg.ReadTimeout <= 0 {
		srv.ReadHeaderTimeout = 10 * time.Second
	}
	dl := &drainingListener{Listener: ln}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(dl) }()
	select {
	case err := <-errc:
		s.Close()
		return err
	case <-ctx.Done():
	}
	grace := s.cfg.ShutdownTimeout
	s.log.Printf("shutting down: finishing the requests in flight (up to %s, --shutdown-timeout)", grace)
	// Leave the cancelled requests time to write their 503.
	cancelAt := grace - min(grace/5, 2*time.Second)
	cancelTimer := time.AfterFunc(cancelAt, func() { cancelBase(errShuttingDown) })
	defer cancelTimer.Stop()
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	// The first Shutdown stops keep-alives and waits for the connections it
	// knows; the listener goes on accepting what the kernel had queued
	// (drainingListener). Once Serve has returned, a second Shutdown waits
	// for the connections accepted meanwhile.
	err := srv.Shutdown(sctx)
	if err == nil {
		<-errc // http.ErrServerClosed, once the queue is drained
		err = srv.Shutdown(sctx)
	}
	if err != nil {
		err = fmt.Errorf("requests still running after %s (--shutdown-timeout): %w", grace, err)
		srv.Close()
		<-errc
	}
	s.Close()
	return err
}

// drainWindow is how long a closed drainingListener still accepts: long
// enough to take every connection the kernel completed before the close.
const drainWindow = 100 * time.Millisecond

// drainingListener defers the close of a TCP listener: Close only sets an
// accept deadline drainWindow away, so that connections the kernel had
// already accepted (clients that sent a request and wait for the answer)
// are served instead of reset; the socket closes when Accept times out.
// A listener without deadlines closes at once.
type drainingListener struct {
	net.Listener
	closing atomic.Bool
}

func (l *drainingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil && l.closing.Load() {
		l.Listener.Close()
		return nil, net.ErrClosed
	}
	return c, err
}

func (l *drainingListener) Close() error {
	if l.closing.Swap(true) {
		return nil
	}
	d, ok := l.Listener.(interface{ SetDeadline(time.Time) error })
	if !ok || d.SetDeadline(time.Now().Add(drainWindow)) != nil {
		return l.Listener.Close()
	}
	return nil
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
	s.inFlight.Add(1)
	defer s.inFlight.Add(-1)
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
