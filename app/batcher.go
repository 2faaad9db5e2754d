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

// streamWindow is how many jobs a stream keeps queued or running at once:
// two, so that a request prepares (decodes) its next chunk while the model
// runs the current one, and a large request never holds more than two
// chunks of decoded pixels.
const streamWindow = 2

// batchJob is one chunk of a request: n images (at most a batch) given
// either as pixels (n×S×S×3 floats) or, for a model that decodes in its
// graph, as encoded bytes.
type batchJob struct {
	stream  *batchStream
	n       int
	pixels  []float32
	encoded [][]byte
	done    chan batchResult // buffered: the owner never blocks on a gone client
}

type batchResult struct {
	probs []float32 // n rows
	err   error
}

// batchStream is the queue of one request's jobs. The batcher serves the
// streams round-robin, one job from each in turn, so that a small request
// arriving during a large one waits about one model run, not the whole
// large request; jobs of a stream whose context is done are dropped
// unrun.
type batchStream struct {
	ctx    context.Context
	jobs   []*batchJob // queued, oldest first; guarded by batcher.mu
	inRing bool        // whether the stream is in batcher.ring
}

// batcher merges the jobs of concurrent requests into batches of up to
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

	mu     sync.Mutex
	ring   []*batchStream // streams with queued jobs, next to serve first
	closed bool           // no more jobs are accepted
	wake   chan struct{}  // a job was queued (buffered: one pending signal)
	stop   chan struct{}
	exited chan struct{}
	once   sync.Once

	runs    atomic.Int64 // model runs (Predict or PredictBytes calls)
	images  atomic.Int64 // images predicted
	queued  atomic.Int64 // jobs submitted so far (tests wait on it)
	dropped atomic.Int64 // jobs dropped because their request ended first

	buf []float32 // the owner's concatenation buffer, reused across batches
}

// newBatcher starts the owner goroutine; Close stops it.
func newBatcher(m batchModel, classes, imageLen, maxBatch int, wait time.Duration) *batcher {
	b := &batcher{
		model: m, classes: classes, imageLen: imageLen, maxBatch: maxBatch, wait: wait,
		wake:   make(chan struct{}, 1),
		stop:   make(chan struct{}),
		exited: make(chan struct{}),
	}
	go b.loop()
	return b
}

// Close stops accepting work, finishes what was queued and returns once the
// owner goroutine has exited: the model can be closed then.
func (b *batcher) Close() {
	b.once.Do(func() {
		b.mu.Lock()
		b.closed = true
		b.mu.Unlock()
		close(b.stop)
	})
	<-b.exited
}

// open starts the stream of one request; its jobs are dropped once ctx is
// done. The caller ends it with closeStream.
func (b *batcher) open(ctx context.Context) *batchStream { return &batchStream{ctx: ctx} }

// closeStream drops the jobs of st still queued: its request has what it
// needs, or gave up.
func (b *batcher) closeStream(st *batchStream) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.dropped.Add(int64(len(st.jobs)))
	st.jobs = nil
	b.unring(st)
}

// enqueue queues a job on st.
func (b *batcher) enqueue(st *batchStream, j *batchJob) error {
	if j.n < 1 || j.n > b.maxBatch {
		return fmt.Errorf("a job of %d images (the batch holds 1 to %d)", j.n, b.maxBatch)
	}
	if j.encoded == nil && len(j.pixels) != j.n*b.imageLen {
		return fmt.Errorf("%d values for %d images of %d", len(j.pixels), j.n, b.imageLen)
	}
	j.stream, j.done = st, make(chan batchResult, 1)
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return errBatcherClosed
	}
	st.jobs = append(st.jobs, j)
	if !st.inRing {
		st.inRing = true
		b.ring = append(b.ring, st)
	}
	b.mu.Unlock()
	b.queued.Add(1)
	select {
	case b.wake <- struct{}{}:
	default:
	}
	return nil
}

// await returns the rows of a queued job.
func (b *batcher) await(ctx context.Context, j *batchJob) ([]float32, error) {
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
	return r.probs, r.err
}

// PredictPixels returns the probabilities of n images of pixels, split
// into jobs of at most maxBatch images.
func (b *batcher) PredictPixels(ctx context.Context, pixels []float32, n int) ([]float32, error) {
	if len(pixels) != n*b.imageLen {
		return nil, fmt.Errorf("%d values for %d images of %d", len(pixels), n, b.imageLen)
	}
	return b.predictJobs(ctx, n, func(i, k int) *batchJob {
		return &batchJob{n: k, pixels: pixels[i*b.imageLen : (i+k)*b.imageLen]}
	})
}

// PredictEncoded returns the probabilities of encoded images, for a model
// that decodes them in its graph.
func (b *batcher) PredictEncoded(ctx context.Context, encoded [][]byte) ([]float32, error) {
	return b.predictJobs(ctx, len(encoded), func(i, k int) *batchJob {
		return &batchJob{n: k, encoded: encoded[i : i+k]}
	})
}

// predictJobs runs n images as jobs of at most maxBatch images, made by
// job(first image, count), keeping streamWindow of them in flight.
func (b *batcher) predictJobs(ctx context.Context, n int, job func(i, k int) *batchJob) ([]float32, error) {
	st := b.open(ctx)
	defer b.closeStream(st)
	var inflight []*batchJob
	var probs []float32
	for i := 0; i < n || len(inflight) > 0; {
		if i < n && len(inflight) < streamWindow {
			k := min(b.maxBatch, n-i)
			j := job(i, k)
			if err := b.enqueue(st, j); err != nil {
				return nil, err
			}
			inflight, i = append(inflight, j), i+k
			continue
		}
		p, err := b.await(ctx, inflight[0])
		if err != nil {
			return nil, err
		}
		probs, inflight = append(probs, p...), inflight[1:]
	}
	return probs, nil
}

// unring removes st from the ring; b.mu is held.
func (b *batcher) unring(st *batchStream) {
	if !st.inRing {
		return
	}
	st.inRing = false
	for i, s := range b.ring {
		if s == st {
			b.ring = append(b.ring[:i], b.ring[i+1:]...)
			return
		}
	}
}

// take removes and returns the next job of at most space images, visiting
// the streams round-robin: the stream served goes to the back of the ring,
// one whose next job does not fit keeps its place (it starts the next
// batch). Jobs of requests already gone are answered with their error and
// dropped. It returns nil when no queued job fits.
func (b *batcher) take(space int) *batchJob {
	b.mu.Lock()
	defer b.mu.Unlock()
	for i := 0; i < len(b.ring); {
		st := b.ring[i]
		for len(st.jobs) > 0 && st.ctx.Err() != nil {
			st.jobs[0].done <- batchResult{err: st.ctx.Err()}
			st.jobs = st.jobs[1:]
			b.dropped.Add(1)
		}
		if len(st.jobs) == 0 {
			b.unring(st)
			continue
		}
		j := st.jobs[0]
		if j.n > space {
			i++
			continue
		}
		st.jobs = st.jobs[1:]
		b.ring = append(b.ring[:i], b.ring[i+1:]...)
		if len(st.jobs) > 0 {
			b.ring = append(b.ring, st)
		} else {
			st.inRing = false
		}
		return j
	}
	return nil
}

// loop is the owner goroutine: it alone calls the model.
func (b *batcher) loop() {
	defer close(b.exited)
	for {
		first := b.take(b.maxBatch)
		if first == nil {
			select {
			case <-b.wake:
				continue
			case <-b.stop:
				// Closed: nothing more can be queued; finish what is.
				if first = b.take(b.maxBatch); first == nil {
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
			if j := b.take(b.maxBatch - n); j != nil {
				batch, n = append(batch, j), n+j.n
				continue
			}
			if timeout == nil {
				break // no waiting: only what is already queued
			}
			select {
			case <-b.wake:
			case <-timeout:
				break collect
			case <-b.stop:
				break collect
			}
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
