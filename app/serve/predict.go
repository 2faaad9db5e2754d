package serve

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/kfash-tf/kfash-tf/augment"
	"github.com/kfash-tf/kfash-tf/graphs"
)

// The answering of predictions: the :predict handler, the per-request
// checks made before any decoding, and the chunked run through the
// batcher.

// errRequestTimeout is the cause of the cancellation of a request that ran
// past RequestTimeout.
var errRequestTimeout = errors.New("request timeout")

// requestContext bounds a request by RequestTimeout; it is also done
// when the client goes away or a shutdown's grace period ends.
func (s *Server) requestContext(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeoutCause(r.Context(), s.cfg.RequestTimeout, errRequestTimeout)
}

// handlePredict answers :predict in the format of the request (row or
// columnar), with TensorFlow Serving's output keys.
func (s *Server) handlePredict(w *requestLog, r *http.Request) {
	release, ok := s.admit(w)
	if !ok {
		return
	}
	defer release()
	ctx, cancel := s.requestContext(r)
	defer cancel()
	body, herr := s.readBody(w, r)
	if herr != nil {
		respondError(w, herr)
		return
	}
	images, rowFormat, explain, herr := s.parsePredictRequest(body)
	if herr == nil && explain {
		herr = s.checkExplain(len(images))
	}
	if herr == nil {
		herr = s.checkImages(images)
	}
	if herr != nil {
		respondError(w, herr)
		return
	}
	w.images = len(images)
	var probs []float32
	var expl []explanation // nil unless asked for
	if explain {
		probs, expl, herr = s.explain(ctx, images)
	} else {
		probs, herr = s.predict(ctx, images)
	}
	if herr != nil {
		respondError(w, herr)
		return
	}
	k := len(s.classes)
	if rowFormat {
		type row struct {
			Probabilities []float32    `json:"probabilities"`         // graphs.OutputProbabilities
			Classes       int64        `json:"classes"`               // graphs.OutputClasses
			ClassNames    string       `json:"class_names"`           // graphs.OutputClassNames
			Explanation   *explanation `json:"explanation,omitempty"` // when asked for
		}
		rows := make([]row, len(images))
		for i := range rows {
			p := probs[i*k : (i+1)*k]
			c := graphs.Argmax(p)
			rows[i] = row{Probabilities: p, Classes: int64(c), ClassNames: s.classes[c]}
			if expl != nil {
				rows[i].Explanation = &expl[i]
			}
		}
		respondJSON(w, http.StatusOK, map[string]any{"predictions": rows})
		return
	}
	type columns struct {
		Probabilities [][]float32   `json:"probabilities"`         // graphs.OutputProbabilities
		Classes       []int64       `json:"classes"`               // graphs.OutputClasses
		ClassNames    []string      `json:"class_names"`           // graphs.OutputClassNames
		Explanation   []explanation `json:"explanation,omitempty"` // when asked for
	}
	out := columns{Explanation: expl}
	for i := range images {
		p := probs[i*k : (i+1)*k]
		c := graphs.Argmax(p)
		out.Probabilities = append(out.Probabilities, p)
		out.Classes = append(out.Classes, int64(c))
		out.ClassNames = append(out.ClassNames, s.classes[c])
	}
	respondJSON(w, http.StatusOK, map[string]any{"outputs": out})
}

// tooManyInstances is the 413 of a request over MaxInstances.
func (s *Server) tooManyInstances(n string) *httpError {
	return httpErrorf(http.StatusRequestEntityTooLarge,
		"the request has %s images, more than the limit of %d per request (%s): split it into several requests",
		n, s.cfg.MaxInstances, flagRef(FlagMaxInstances))
}

// checkImages reads the headers of every encoded image of a request (the
// GIFs' frame headers too) before any is decoded: each must be a supported
// format within MaxPixels and MaxGIFFrames, and together they must
// declare at most MaxRequestPixels. It records each image's format.
func (s *Server) checkImages(images []imageInput) *httpError {
	if len(images) > s.cfg.MaxInstances {
		return s.tooManyInstances(fmt.Sprint(len(images)))
	}
	var total int64
	for i := range images {
		img := &images[i]
		if img.encoded == nil {
			continue
		}
		info, err := s.model.InspectImage(img.encoded)
		if err != nil {
			return imageError(i, err)
		}
		img.format = info.Format
		total += info.Pixels
		if total > s.cfg.MaxRequestPixels {
			return httpErrorf(http.StatusRequestEntityTooLarge,
				"the images of the request declare more than %d pixels in all (%d up to image %d), the limit per request (%s): send fewer or smaller images per request (nothing was decoded)",
				s.cfg.MaxRequestPixels, total, i, flagRef(FlagMaxRequestPixels))
		}
	}
	return nil
}

// predict runs checked images through the batcher, one chunk of at most
// MaxBatch images at a time, keeping streamWindow jobs in flight: the
// next chunk is decoded (on the request's goroutine, so decoding uses
// every core while the batcher's goroutine runs the model) while the
// current one runs, and a request never holds more than two chunks of
// decoded pixels whatever its size. The batcher fills each model run
// round-robin, an image from each request in turn, so a large request does
// not hold back small ones; when ctx ends, the chunks still queued are
// dropped.
func (s *Server) predict(ctx context.Context, images []imageInput) ([]float32, *httpError) {
	st := s.batch.open(ctx)
	defer s.batch.closeStream(st)
	type pending struct {
		job *batchJob
		idx []int // the request's images the job's rows belong to
	}
	k := len(s.classes)
	probs := make([]float32, len(images)*k)
	var inflight []pending
	collect := func() *httpError {
		p := inflight[0]
		inflight = inflight[1:]
		rows, err := s.batch.await(ctx, p.job)
		if err != nil {
			return s.runError(ctx, err, p.job.encoded != nil)
		}
		for j, i := range p.idx {
			copy(probs[i*k:(i+1)*k], rows[j*k:(j+1)*k])
		}
		return nil
	}
	for start := 0; start < len(images); start += s.cfg.MaxBatch {
		end := min(start+s.cfg.MaxBatch, len(images))
		jobs, idxs, herr := s.prepareChunk(ctx, images, start, end)
		if herr != nil {
			return nil, herr
		}
		for c, j := range jobs {
			if err := s.batch.enqueue(st, j); err != nil {
				return nil, s.runError(ctx, err, false)
			}
			inflight = append(inflight, pending{job: j, idx: idxs[c]})
		}
		for len(inflight) > streamWindow {
			if herr := collect(); herr != nil {
				return nil, herr
			}
		}
	}
	for len(inflight) > 0 {
		if herr := collect(); herr != nil {
			return nil, herr
		}
	}
	return probs, nil
}

// prepareChunk makes the batcher jobs of images[start:end]: one of pixels
// (arrays sent as numbers, and encoded images decoded here in Go) and one
// of encoded images for a model that decodes them in its graph.
func (s *Server) prepareChunk(ctx context.Context, images []imageInput, start, end int) ([]*batchJob, [][]int, *httpError) {
	per := s.size * s.size * 3
	var pixIdx, encIdx []int
	var encoded [][]byte
	for i := start; i < end; i++ {
		switch img := images[i]; {
		case img.encoded == nil:
			pixIdx = append(pixIdx, i)
		case s.model.CanDecodeInGraph(img.format):
			encIdx = append(encIdx, i)
			encoded = append(encoded, img.encoded)
		default:
			pixIdx = append(pixIdx, i)
		}
	}
	var jobs []*batchJob
	var idxs [][]int
	if len(pixIdx) > 0 {
		pixels := make([]float32, len(pixIdx)*per)
		for j, i := range pixIdx {
			dst := pixels[j*per : (j+1)*per]
			if images[i].encoded == nil {
				copy(dst, images[i].pixels)
				images[i].pixels = nil // the chunk's copy is the one in use
				continue
			}
			if err := s.decodeInto(ctx, images[i].encoded, dst); err != nil {
				if ctx.Err() != nil {
					return nil, nil, s.runError(ctx, err, false)
				}
				return nil, nil, imageError(i, err)
			}
		}
		jobs, idxs = append(jobs, &batchJob{n: len(pixIdx), pixels: pixels}), append(idxs, pixIdx)
	}
	if len(encIdx) > 0 {
		jobs, idxs = append(jobs, &batchJob{n: len(encIdx), encoded: encoded}), append(idxs, encIdx)
	}
	return jobs, idxs, nil
}

// decodeInto decodes one image in Go into dst, at most one per core at a
// time: beyond that, more decodes in parallel only add memory (a decoded
// photo is megabytes) and take CPU from the model.
func (s *Server) decodeInto(ctx context.Context, data []byte, dst []float32) error {
	select {
	case s.decoding <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-s.decoding }()
	return s.model.Decode.PreprocessBytes(data, s.size, dst)
}

// imageError is the 4xx for an encoded image that cannot be used.
func imageError(i int, err error) *httpError {
	msg := strings.TrimPrefix(err.Error(), "augment: ")
	e := &httpError{status: http.StatusBadRequest, image: i}
	switch {
	case errors.Is(err, augment.ErrTooManyFrames):
		e.status, e.detail = http.StatusRequestEntityTooLarge, msg+" ("+flagRef(FlagMaxGIFFrames)+")"
	case errors.Is(err, augment.ErrTooLarge):
		e.status, e.detail = http.StatusRequestEntityTooLarge, msg+" ("+flagRef(FlagMaxPixels)+")"
	case errors.Is(err, augment.ErrNotImage):
		e.detail = msg
	default:
		e.detail = "cannot decode: " + msg
	}
	e.msg = fmt.Sprintf("image %d: %s", i, e.detail)
	return e
}

// runError maps a batcher failure: shutdown is 503, a request past
// RequestTimeout is 504, a client gone is logged as 499 (nginx's
// convention; nobody reads it), a failed in-graph decode is the request's
// fault (the batcher reran it alone), anything else is the server's.
func (s *Server) runError(ctx context.Context, err error, encoded bool) *httpError {
	cause := context.Cause(ctx)
	switch {
	case errors.Is(err, errBatcherClosed) || errors.Is(cause, errShuttingDown):
		return httpErrorf(http.StatusServiceUnavailable, "%v: retry on another replica or later", errShuttingDown)
	case errors.Is(cause, errRequestTimeout):
		return httpErrorf(http.StatusGatewayTimeout, "the request took longer than %s (%s) and was cancelled: send fewer images per request", s.cfg.RequestTimeout, flagRef(FlagRequestTimeout))
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
