package serve

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/kfash-tf/kfash-tf/graphs"
)

// Server serves one graphs.Servable over TensorFlow Serving's REST API
// (status, metadata, :predict in row and columnar formats), plus
// /v1/classify for multipart uploads, a small HTML form at / and /healthz.
// Predictions of concurrent requests are batched on one goroutine.
type Server struct {
	cfg     Config
	model   *graphs.Servable
	classes []string
	size    int
	batch   *batcher
	log     *log.Logger
	// decoding holds a token per image being decoded in Go.
	decoding chan struct{}
	// processing holds a token per request being processed (:predict,
	// /v1/classify): at most MaxInFlight, the bound of the memory requests
	// take.
	processing chan struct{}
	// explainer answers `"explain": true` (nil when the model cannot
	// explain: explainErr says why); explaining holds a token per explain
	// graph run, at most one.
	explainer  *graphs.Explainer
	explainErr error
	explaining chan struct{}
	// inFlight counts the requests whose handler has started and not
	// returned: the ones a shutdown must finish.
	inFlight atomic.Int64
}

// InFlight returns how many requests are being handled.
func (s *Server) InFlight() int64 { return s.inFlight.Load() }

// New prepares a server for m and starts its batching goroutine; it sets
// m's decoding limits (MaxPixels, MaxGIFFrames) and, when m can explain (a
// run folder, or a SavedModel with the explain signature), adds Grad-CAM
// to its graph for `"explain": true` requests (so it must come before
// anything else uses m). Serve runs it; Close (or
// the end of Serve) stops the batcher. The caller closes m afterwards.
func New(m *graphs.Servable, cfg Config, logw io.Writer) (*Server, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	m.Decode.MaxPixels = cfg.MaxPixels
	m.MaxGIFFrames = cfg.MaxGIFFrames
	s := &Server{cfg: cfg, model: m, classes: m.Classes(), size: m.InputSize(), log: log.New(logw, "", log.LstdFlags|log.Lmicroseconds),
		decoding: make(chan struct{}, runtime.GOMAXPROCS(0)), processing: make(chan struct{}, cfg.MaxInFlight)}
	s.explaining = make(chan struct{}, 1)
	s.explainer, s.explainErr = graphs.NewExplainer(m, "")
	if s.explainErr != nil && !errors.Is(s.explainErr, graphs.ErrNoExplain) {
		// The model serves predictions all the same.
		s.log.Printf("explain unavailable: %v", s.explainErr)
	}
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
	s.log.Printf("shutting down: finishing the requests in flight (up to %s, %s)", grace, flagRef(FlagShutdownTimeout))
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
		err = fmt.Errorf("requests still running after %s (%s): %w", grace, flagRef(FlagShutdownTimeout), err)
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

// admit takes a processing token for a request that reads a body and runs
// the model, or answers 503 with Retry-After when MaxInFlight requests are
// already being processed: past that, waiting would only pile up bodies in
// memory. The caller calls the returned release when it has answered.
func (s *Server) admit(w http.ResponseWriter) (release func(), ok bool) {
	select {
	case s.processing <- struct{}{}:
		return func() { <-s.processing }, true
	default:
	}
	w.Header().Set("Retry-After", "1")
	respondError(w, httpErrorf(http.StatusServiceUnavailable,
		"the server is busy: %d requests are being processed, its limit (%s); retry in a moment or on another replica",
		s.cfg.MaxInFlight, flagRef(FlagMaxInFlight)))
	return nil, false
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
