package augment

import (
	"context"
	"image"
	"sync"
	"sync/atomic"
)

// Epoch runs epoch number epoch and returns the channel on which its batches
// arrive, in plan order. Images are decoded, resized and augmented by
// Workers goroutines in parallel; at most Prefetch finished batches wait in
// the channel, so memory stays bounded by a few batches whatever the size of
// the dataset.
//
// The channel is closed after the last batch, or soon after ctx is
// cancelled (a few batches already finished may still arrive); when it is
// closed, every goroutine of the epoch has finished or is returning. A
// consumer that stops reading early must cancel ctx, or the epoch's
// goroutines wait for it forever.
//
// Files that cannot be used are skipped (see LoaderConfig.OnSkip and
// Skipped): they are left out of their batch, which comes out smaller, and
// are not read again in later epochs. A batch that loses all its files is
// not sent.
func (l *Loader) Epoch(ctx context.Context, epoch int) <-chan *Batch {
	out := make(chan *Batch, l.cfg.Prefetch)
	go l.run(ctx, epoch, out)
	return out
}

// pendingBatch is a batch being filled by the workers.
type pendingBatch struct {
	buf       *batchBuffers
	n         int          // images planned
	remaining atomic.Int32 // images not yet processed
	done      chan struct{}
}

// job asks a worker to load one image into one slot of a batch.
type job struct {
	pb   *pendingBatch
	slot int
	e    entry
}

// run is the epoch's supervisor: it starts the dispatcher and the workers,
// emits the batches in order, and closes out only after every goroutine it
// started has returned and every undelivered buffer is back in the pool.
func (l *Loader) run(ctx context.Context, epoch int, out chan<- *Batch) {
	defer close(out)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	jobs := make(chan job, l.cfg.Workers)
	// The dispatcher blocks on this queue, which bounds the batches being
	// filled to inFlight (+1 it holds).
	pending := make(chan *pendingBatch, l.inFlight())
	var wg sync.WaitGroup
	wg.Add(1 + l.cfg.Workers)
	go func() {
		defer wg.Done()
		l.dispatch(ctx, l.plan(epoch), jobs, pending)
	}()
	for w := 0; w < l.cfg.Workers; w++ {
		go func() {
			defer wg.Done()
			l.work(ctx, jobs)
		}()
	}

	unfinished := l.emit(ctx, pending, out)
	cancel()
	wg.Wait()
	// Only now can no worker be writing into these buffers.
	if unfinished != nil {
		l.pool.put(unfinished.buf)
	}
	for pb := range pending {
		l.pool.put(pb.buf)
	}
}

// dispatch cuts the plan into batches, queues each batch on pending (in
// order) and then its images on jobs. It closes both when done or
// cancelled.
func (l *Loader) dispatch(ctx context.Context, entries []entry, jobs chan<- job, pending chan<- *pendingBatch) {
	defer close(pending)
	defer close(jobs)
	bs := l.cfg.BatchSize
	for lo := 0; lo < len(entries); lo += bs {
		hi := min(lo+bs, len(entries))
		pb := &pendingBatch{buf: l.pool.get(), n: hi - lo, done: make(chan struct{})}
		pb.remaining.Store(int32(hi - lo))
		select {
		case pending <- pb:
		case <-ctx.Done():
			l.pool.put(pb.buf) // never shared: safe to recycle now
			return
		}
		for i := lo; i < hi; i++ {
			select {
			case jobs <- job{pb: pb, slot: i - lo, e: entries[i]}:
			case <-ctx.Done():
				return
			}
		}
	}
}

// emit sends the batches to out in order as they complete. On cancellation
// it returns the batch it was waiting for, whose buffer may still be
// written by a worker and so must be recycled only after they stop.
func (l *Loader) emit(ctx context.Context, pending <-chan *pendingBatch, out chan<- *Batch) *pendingBatch {
	for {
		var pb *pendingBatch
		select {
		case <-ctx.Done():
			return nil
		case p, ok := <-pending:
			if !ok {
				return nil
			}
			pb = p
		}
		select {
		case <-ctx.Done():
			return pb
		case <-pb.done:
		}
		b := l.assemble(pb)
		if b == nil {
			continue
		}
		select {
		case out <- b:
		case <-ctx.Done():
			b.Release()
			return nil
		}
	}
}

// assemble turns a filled batch into a Batch, moving the loaded images
// over the slots of skipped ones so that Images stays contiguous. It
// returns nil, recycling the buffer, when every image was skipped.
func (l *Loader) assemble(pb *pendingBatch) *Batch {
	buf := pb.buf
	sz := l.pool.imageLen
	n := 0
	for i := 0; i < pb.n; i++ {
		if !buf.ok[i] {
			continue
		}
		if n != i {
			copy(buf.images[n*sz:(n+1)*sz], buf.images[i*sz:(i+1)*sz])
			buf.labels[n] = buf.labels[i]
			buf.paths[n] = buf.paths[i]
		}
		n++
	}
	if n == 0 {
		l.pool.put(buf)
		return nil
	}
	return &Batch{
		// Full slice expressions: an append by the consumer must not
		// write into the pooled buffer.
		Images:  buf.images[: n*sz : n*sz],
		Labels:  buf.labels[:n:n],
		Paths:   buf.paths[:n:n],
		N:       n,
		release: func() { l.pool.put(buf) },
	}
}

// worker is the per-goroutine scratch space, reused from image to image.
type worker struct {
	resized   *image.RGBA // the resized image when it is not cached
	augmented *image.RGBA
	resizer   resizer // its buffers, about 1 MB for a 400×533 photo at 150 px
}

// work processes jobs until jobs is closed or ctx is cancelled.
func (l *Loader) work(ctx context.Context, jobs <-chan job) {
	rect := image.Rect(0, 0, l.cfg.Size, l.cfg.Size)
	w := &worker{augmented: image.NewRGBA(rect)}
	if l.cache == nil {
		w.resized = image.NewRGBA(rect)
	}
	for {
		select {
		case <-ctx.Done():
			return
		case j, ok := <-jobs:
			if !ok {
				return
			}
			l.process(w, j)
		}
	}
}

// process loads one image into its slot and marks the slot done.
func (l *Loader) process(w *worker, j job) {
	sz := l.pool.imageLen
	buf := j.pb.buf
	s := l.samples[j.e.sample]
	buf.labels[j.slot] = int32(s.Label)
	buf.paths[j.slot] = s.Path
	img := l.base(w, j.e.sample)
	buf.ok[j.slot] = img != nil
	if img != nil {
		if j.e.tf.Op != OpIdentity {
			j.e.tf.applyInto(w.augmented, img)
			img = w.augmented
		}
		toFloat32(img, buf.images[j.slot*sz:(j.slot+1)*sz])
	}
	if j.pb.remaining.Add(-1) == 0 {
		close(j.pb.done)
	}
}

// base returns sample i decoded and resized, before augmentation: from the
// cache, or decoded now. It returns nil for a file that cannot be used,
// recording the failure the first time.
func (l *Loader) base(w *worker, i int) *image.RGBA {
	if l.cache != nil {
		if img := l.cache[i].Load(); img != nil {
			return img
		}
	}
	if l.skips.has(i) {
		return nil
	}
	s := l.samples[i]
	src, err := l.decode.decodeFileImage(s.Path)
	if err != nil {
		l.skips.add(i, SkipReport{Path: s.Path, Label: s.Label, Err: err})
		return nil
	}
	dst := w.resized
	if l.cache != nil {
		dst = image.NewRGBA(image.Rect(0, 0, l.cfg.Size, l.cfg.Size))
	}
	w.resizer.resize(dst, src)
	if l.cache != nil {
		l.cache[i].Store(dst)
	}
	return dst
}
