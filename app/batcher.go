package app

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// batchModel is what the batcher runs: graphs.Model, or a stand-in in
// tests.
type batchModel interface {
	Predict(images []float32, n int) ([]float32, error)
	PredictBytes(images [][]byte) ([]float32, error)
}

// errBatcherClosed is returned for work submitted after Close.
var errBatcherClosed = errors.New("the server is shutting down")

// batchJob is the work of one request (or a slice of a request larger than
// a batch): n images given either as pixels (n×S×S×3 floats) or, for a
// model that decodes in its graph, as encoded bytes.
type batchJob struct {
	n       int
	pixels  []float32
	encoded [][]byte
	done    chan batchResult // buffered: the owner never blocks on a gone client
}

type batchResult struct {
	probs []float32 // n rows
	err   error
}

// batcher merges the images of concurrent requests into batches of up to
// maxBatch images, waiting at most wait after the first one for company,
// and runs each batch on one goroutine that owns the model's session: one
// Run per batch instead of one per request, which is what makes a CPU
// serve more images per second under load (a batch of 8 costs far less
// than 8 runs of 1), and which bounds the memory in flight.
type batcher struct {
	model    batchModel
	classes  int
	imageLen int // floats per image
	maxBatch int
	wait     time.Duration

	queue  chan *batchJob
	stop   chan struct{}
	exited chan struct{}
	once   sync.Once

	runs   atomic.Int64 // model runs (Predict or PredictBytes calls)
	images atomic.Int64 // images predicted
	queued atomic.Int64 // jobs submitted so far (tests wait on it)

	buf []float32 // the owner's concatenation buffer, reused across batches
}

// newBatcher starts the owner goroutine; Close stops it.
func newBatcher(m batchModel, classes, imageLen, maxBatch int, wait time.Duration) *batcher {
	b := &batcher{
		model: m, classes: classes, imageLen: imageLen, maxBatch: maxBatch, wait: wait,
		// A queue as deep as two batches: a burst fills the next batch
		// while the current one runs, and more requests wait in their
		// handlers, where the HTTP server's limits apply.
		queue:  make(chan *batchJob, 2*maxBatch),
		stop:   make(chan struct{}),
		exited: make(chan struct{}),
	}
	go b.loop()
	return b
}

// Close stops accepting work, finishes what was queued and returns once the
// owner goroutine has exited: the model can be closed then.
func (b *batcher) Close() {
	b.once.Do(func() { close(b.stop) })
	<-b.exited
}

// PredictPixels returns the probabilities of n images of pixels, split
// into jobs of at most maxBatch images.
func (b *batcher) PredictPixels(ctx context.Context, pixels []float32, n int) ([]float32, error) {
	if len(pixels) != n*b.imageLen {
		return nil, fmt.Errorf("%d values for %d images of %d", len(pixels), n, b.imageLen)
	}
	var jobs []*batchJob
	for i := 0; i < n; i += b.maxBatch {
		k := min(b.maxBatch, n-i)
		jobs = append(jobs, &batchJob{n: k, pixels: pixels[i*b.imageLen : (i+k)*b.imageLen]})
	}
	return b.submit(ctx, jobs)
}

// PredictEncoded returns the probabilities of encoded images, for a model
// that decodes them in its graph.
func (b *batcher) PredictEncoded(ctx context.Context, encoded [][]byte) ([]float32, error) {
	var jobs []*batchJob
	for i := 0; i < len(encoded); i += b.maxBatch {
		k := min(b.maxBatch, len(encoded)-i)
		jobs = append(jobs, &batchJob{n: k, encoded: encoded[i : i+k]})
	}
	return b.submit(ctx, jobs)
}

// submit queues the jobs and gathers their rows in order.
func (b *batcher) submit(ctx context.Context, jobs []*batchJob) ([]float32, error) {
	for _, j := range jobs {
		j.done = make(chan batchResult, 1)
		select {
		case b.queue <- j:
			b.queued.Add(1)
		case <-b.stop:
			return nil, errBatcherClosed
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	var probs []float32
	for _, j := range jobs {
		var r batchResult
		select {
		case r = <-j.done:
		case <-b.exited:
			// The owner may have answered just before exiting.
			select {
			case r = <-j.done:
			default:
				return nil, errBatcherClosed
			}
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if r.err != nil {
			return nil, r.err
		}
		probs = append(probs, r.probs...)
	}
	return probs, nil
}

// loop is the owner goroutine: it alone calls the model.
func (b *batcher) loop() {
	defer close(b.exited)
	var carry *batchJob // a job that did not fit in the previous batch
	for {
		first := carry
		carry = nil
		if first == nil {
			select {
			case first = <-b.queue:
			case <-b.stop:
				// Finish what is queued, then exit.
				select {
				case first = <-b.queue:
				default:
					return
				}
			}
		}
		batch, n := []*batchJob{first}, first.n
		var timer *time.Timer
		var timeout <-chan time.Time
		if b.wait > 0 && n < b.maxBatch {
			timer = time.NewTimer(b.wait)
			timeout = timer.C
		}
	collect:
		for n < b.maxBatch {
			var j *batchJob
			if timeout == nil {
				// No waiting: take only what is already queued.
				select {
				case j = <-b.queue:
				default:
					break collect
				}
			} else {
				select {
				case j = <-b.queue:
				case <-timeout:
					break collect
				case <-b.stop:
					break collect
				}
			}
			if n+j.n > b.maxBatch {
				carry = j
				break collect
			}
			batch, n = append(batch, j), n+j.n
		}
		if timer != nil {
			timer.Stop()
		}
		b.run(batch)
	}
}

// run predicts a batch: one model run for the pixel jobs, one for the
// encoded ones. When a merged run fails, each job is run alone so that a
// bad request fails by itself and not its neighbours.
func (b *batcher) run(batch []*batchJob) {
	var pix, enc []*batchJob
	for _, j := range batch {
		if j.encoded != nil {
			enc = append(enc, j)
		} else {
			pix = append(pix, j)
		}
	}
	for _, group := range [][]*batchJob{pix, enc} {
		if len(group) == 0 {
			continue
		}
		probs, err := b.predict(group)
		if err != nil && len(group) > 1 {
			for _, j := range group {
				p, err := b.predict([]*batchJob{j})
				j.done <- batchResult{probs: p, err: err}
			}
			continue
		}
		off := 0
		for _, j := range group {
			if err != nil {
				j.done <- batchResult{err: err}
				continue
			}
			rows := j.n * b.classes
			j.done <- batchResult{probs: probs[off : off+rows : off+rows]}
			off += rows
		}
	}
}

// predict runs the model once on the jobs of one kind.
func (b *batcher) predict(jobs []*batchJob) ([]float32, error) {
	n := 0
	for _, j := range jobs {
		n += j.n
	}
	b.runs.Add(1)
	b.images.Add(int64(n))
	if jobs[0].encoded != nil {
		var all [][]byte
		for _, j := range jobs {
			all = append(all, j.encoded...)
		}
		return b.model.PredictBytes(all)
	}
	pixels := jobs[0].pixels
	if len(jobs) > 1 {
		// Predict copies into a TensorFlow tensor anyway: concatenate into
		// a buffer the owner keeps, not a fresh one per batch.
		if cap(b.buf) < n*b.imageLen {
			b.buf = make([]float32, 0, b.maxBatch*b.imageLen)
		}
		pixels = b.buf[:0]
		for _, j := range jobs {
			pixels = append(pixels, j.pixels...)
		}
	}
	return b.model.Predict(pixels, n)
}
