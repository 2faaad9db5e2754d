package serve

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// batchModel is what the batcher runs: a graphs.Servable, or a stand-in in
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
// graph, as encoded bytes. Its images may be spread over several model
// runs; done gets one result once all are answered, or at the first error.
type batchJob struct {
	stream  *batchStream
	n       int
	pixels  []float32
	encoded [][]byte
	done    chan batchResult // buffered: the owner never blocks on a gone client

	// The owner goroutine's bookkeeping (taken also under batcher.mu).
	taken    int       // images handed to model runs so far
	answered int       // images whose rows are in probs
	probs    []float32 // n rows, filled as runs answer
	settled  bool      // done has its result
}

// batchResult is what a job's owner receives.
type batchResult struct {
	probs []float32 // n rows
	err   error
}

// batchPart is the images [from, to) of a job in one model run.
type batchPart struct {
	job      *batchJob
	from, to int
}

// batchStream is the queue of one request's jobs. The batcher fills each
// model run one image at a time from each stream in turn, so a small
// request arriving during a large one rides in the very next run beside
// the large one's images, instead of waiting for its chunks; jobs of a
// stream whose context is done are dropped unrun.
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
	if j.encoded != nil && len(j.encoded) != j.n {
		return fmt.Errorf("%d encoded images for a job of %d", len(j.encoded), j.n)
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

// fill adds up to space images to batch and returns it with the count
// added. It visits the streams round-robin one image at a time: the stream
// at the front of the ring gives its next image and goes to the back, so
// every stream with queued work has an image in the run while there is
// room, and a stream's turn carries over to the next run. Consecutive
// images of one job make one part. Jobs of requests already gone are
// answered with their error and dropped.
func (b *batcher) fill(batch []batchPart, space int) ([]batchPart, int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	added := 0
	for added < space && len(b.ring) > 0 {
		st := b.ring[0]
		b.ring = b.ring[1:]
		for len(st.jobs) > 0 && st.ctx.Err() != nil {
			b.settle(st.jobs[0], batchResult{err: st.ctx.Err()})
			st.jobs = st.jobs[1:]
			b.dropped.Add(1)
		}
		if len(st.jobs) == 0 {
			st.inRing = false
			continue
		}
		j := st.jobs[0]
		batch = addImage(batch, j)
		added++
		if j.taken == j.n {
			st.jobs = st.jobs[1:]
		}
		if len(st.jobs) > 0 {
			b.ring = append(b.ring, st)
		} else {
			st.inRing = false
		}
	}
	return batch, added
}

// addImage adds j's next image to batch: to the part that ends just
// before it, or as a new part.
func addImage(batch []batchPart, j *batchJob) []batchPart {
	i := j.taken
	j.taken++
	for k := len(batch) - 1; k >= 0; k-- {
		if p := &batch[k]; p.job == j && p.to == i {
			p.to++
			return batch
		}
	}
	return append(batch, batchPart{job: j, from: i, to: i + 1})
}

// loop is the owner goroutine: it alone calls the model.
func (b *batcher) loop() {
	defer close(b.exited)
	var batch []batchPart
	for {
		var n int
		batch, n = b.fill(batch[:0], b.maxBatch)
		if n == 0 {
			select {
			case <-b.wake:
				continue
			case <-b.stop:
				// Closed: nothing more can be queued; finish what is.
				if batch, n = b.fill(batch[:0], b.maxBatch); n == 0 {
					return
				}
			}
		}
		var timer *time.Timer
		var timeout <-chan time.Time
		if b.wait > 0 && n < b.maxBatch {
			timer = time.NewTimer(b.wait)
			timeout = timer.C
		}
	collect:
		for n < b.maxBatch {
			var k int
			if batch, k = b.fill(batch, b.maxBatch-n); k > 0 {
				n += k
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

// run predicts a batch: one model run for the parts of pixels, one for the
// encoded ones. When a merged run fails, each part is run alone so that a
// bad request fails by itself and not its neighbours.
func (b *batcher) run(batch []batchPart) {
	var pix, enc []batchPart
	for _, p := range batch {
		if p.job.encoded != nil {
			enc = append(enc, p)
		} else {
			pix = append(pix, p)
		}
	}
	for _, group := range [][]batchPart{pix, enc} {
		if len(group) == 0 {
			continue
		}
		probs, err := b.predict(group)
		if err != nil && len(group) > 1 {
			for _, p := range group {
				if !p.job.settled {
					rows, err := b.predict([]batchPart{p})
					b.answer(p, rows, err)
				}
			}
			continue
		}
		off := 0
		for _, p := range group {
			rows := (p.to - p.from) * b.classes
			if err != nil {
				b.answer(p, nil, err)
				continue
			}
			b.answer(p, probs[off:off+rows:off+rows], nil)
			off += rows
		}
	}
}

// answer records the rows of a part, or its error. A job's result goes
// out once all its images are answered, or at its first error.
func (b *batcher) answer(p batchPart, rows []float32, err error) {
	j := p.job
	switch {
	case j.settled:
	case err != nil:
		b.settle(j, batchResult{err: err})
	case p.from == 0 && p.to == j.n:
		b.settle(j, batchResult{probs: rows}) // the whole job in one run: no copy
	default:
		if j.probs == nil {
			j.probs = make([]float32, j.n*b.classes)
		}
		copy(j.probs[p.from*b.classes:], rows)
		if j.answered += p.to - p.from; j.answered == j.n {
			b.settle(j, batchResult{probs: j.probs})
		}
	}
}

// settle sends a job's result, once.
func (b *batcher) settle(j *batchJob, r batchResult) {
	if !j.settled {
		j.settled = true
		j.done <- r
	}
}

// predict runs the model once on parts of one kind.
func (b *batcher) predict(parts []batchPart) ([]float32, error) {
	n := 0
	for _, p := range parts {
		n += p.to - p.from
	}
	b.runs.Add(1)
	b.images.Add(int64(n))
	if parts[0].job.encoded != nil {
		all := make([][]byte, 0, n)
		for _, p := range parts {
			all = append(all, p.job.encoded[p.from:p.to]...)
		}
		return b.model.PredictBytes(all)
	}
	if len(parts) == 1 {
		p := parts[0]
		return b.model.Predict(p.job.pixels[p.from*b.imageLen:p.to*b.imageLen], n)
	}
	// Predict copies into a TensorFlow tensor anyway: concatenate into a
	// buffer the owner keeps, not a fresh one per batch.
	if cap(b.buf) < n*b.imageLen {
		b.buf = make([]float32, 0, b.maxBatch*b.imageLen)
	}
	pixels := b.buf[:0]
	for _, p := range parts {
		pixels = append(pixels, p.job.pixels[p.from*b.imageLen:p.to*b.imageLen]...)
	}
	return b.model.Predict(pixels, n)
}
