package augment

import (
	"errors"
	"fmt"
	"image"
	"math"
	"runtime"
	"sync/atomic"
)

// DefaultPrefetch is the number of finished batches the loader keeps ready
// ahead of the consumer when LoaderConfig.Prefetch is 0.
const DefaultPrefetch = 2

// LoaderConfig configures a Loader. Size and BatchSize are required; the
// zero value of every other field is a sensible default.
type LoaderConfig struct {
	// Size is the network's input side: images are stretched to Size×Size.
	Size int
	// BatchSize is the number of images per batch (the last batch of an
	// epoch may be smaller unless DropLast, and a batch with skipped files
	// is smaller too).
	BatchSize int
	// Shuffle reorders the samples every epoch (a permutation fixed by Seed
	// and the epoch number).
	Shuffle bool
	// Augment is the augmentation mode, as ParseMode reads it ("" means
	// ModeNone).
	Augment Mode
	// Seed fixes the shuffle order and every augmentation: the same Seed
	// and epoch give the same batches whatever the number of Workers.
	Seed int64
	// Workers is the number of goroutines decoding images; 0 means
	// runtime.NumCPU().
	Workers int
	// Prefetch is the number of finished batches kept ready ahead of the
	// consumer; 0 means DefaultPrefetch.
	Prefetch int
	// DropLast drops the last batch of an epoch when it would be smaller
	// than BatchSize (with Shard, the last global batch smaller than
	// Shard.Count × BatchSize).
	DropLast bool
	// Shard makes the loader one task's part of an epoch that several tasks
	// read together (synchronous data-parallel training); the zero value is
	// the whole epoch. See Shard.
	Shard Shard
	// Cache keeps every decoded and resized image (before augmentation) in
	// memory after its first use, so later epochs skip decoding. It needs
	// Len × Size × Size × 4 bytes (8-bit RGBA), which must not exceed
	// CacheBudgetBytes.
	Cache bool
	// CacheBudgetBytes is the memory the cache may use; required with Cache.
	CacheBudgetBytes int64
	// MaxPixels rejects (skips) images with more pixels than this; 0 means
	// DefaultMaxPixels.
	MaxPixels int64
	// OnSkip, when set, is called once for every image that cannot be used,
	// from a worker goroutine; calls are serialised. It should return
	// quickly: the workers wait for it.
	OnSkip func(SkipReport)
}

// Loader turns a list of samples into batches, epoch after epoch. It holds
// no state that changes between epochs except the cache and the list of
// skipped files, so epoch e is the same whether or not epochs before it were
// run. Its methods are safe for concurrent use.
type Loader struct {
	samples []Sample
	cfg     LoaderConfig
	decode  DecodeOptions
	pool    *bufferPool
	skips   *skipList
	// cache[i] is the resized, unaugmented image of sample i once decoded;
	// nil without Cache. Atomic pointers let the workers of overlapping
	// epochs fill and read it without a lock.
	cache []atomic.Pointer[image.RGBA]
}

// Batch is a batch of images ready for the network.
type Batch struct {
	// Images holds N images of Size×Size×3 float32 values, NHWC, RGB,
	// 0–255 (not normalised).
	Images []float32
	// Labels holds the N class indices.
	Labels []int32
	// Paths holds the N image files, for error analysis.
	Paths []string
	// N is the number of images; it is smaller than BatchSize for the last
	// batch of an epoch and for batches that lost skipped files.
	N int

	release func()
}

// Release hands the batch's buffers back to the loader for reuse. After
// Release, Images, Labels and Paths must not be used. Calling it again is a
// no-op; never calling it only costs garbage collection.
func (b *Batch) Release() {
	if b.release != nil {
		b.release()
		b.release = nil
		b.Images, b.Labels, b.Paths, b.N = nil, nil, nil, 0
	}
}

// NewLoader checks cfg and returns a loader over samples. The samples are
// not opened until an epoch runs.
func NewLoader(samples []Sample, cfg LoaderConfig) (*Loader, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if len(samples) == 0 {
		return nil, errors.New("augment: loader: no samples")
	}
	for i, s := range samples {
		if s.Label < 0 || s.Label > math.MaxInt32 {
			return nil, fmt.Errorf("augment: loader: sample %d (%s) has invalid label %d", i, s.Path, s.Label)
		}
	}
	l := &Loader{
		samples: append([]Sample(nil), samples...),
		cfg:     cfg,
		decode:  DecodeOptions{MaxPixels: cfg.MaxPixels},
		skips:   newSkipList(cfg.OnSkip),
	}
	if cfg.DropLast && l.Len() < cfg.BatchSize*cfg.Shard.tasks() {
		if cfg.Shard.tasks() > 1 {
			return nil, fmt.Errorf("augment: loader: DropLast with %d samples per epoch, %d tasks and BatchSize %d gives no batch",
				l.Len(), cfg.Shard.Count, cfg.BatchSize)
		}
		return nil, fmt.Errorf("augment: loader: DropLast with %d samples per epoch and BatchSize %d gives no batch",
			l.Len(), cfg.BatchSize)
	}
	if cfg.Cache {
		need := int64(len(samples)) * int64(cfg.Size) * int64(cfg.Size) * 4
		if need > cfg.CacheBudgetBytes {
			return nil, fmt.Errorf("augment: loader: caching %d images of %dx%d needs %d bytes (%.1f MiB), "+
				"more than CacheBudgetBytes %d (%.1f MiB)", len(samples), cfg.Size, cfg.Size,
				need, mib(need), cfg.CacheBudgetBytes, mib(cfg.CacheBudgetBytes))
		}
		l.cache = make([]atomic.Pointer[image.RGBA], len(samples))
	}
	l.pool = newBufferPool(l.maxLiveBatches(), cfg.BatchSize, cfg.Size*cfg.Size*3)
	return l, nil
}

// withDefaults validates c and fills in its defaults.
func (c LoaderConfig) withDefaults() (LoaderConfig, error) {
	if c.Size <= 0 {
		return c, fmt.Errorf("augment: loader: Size must be positive, got %d", c.Size)
	}
	if c.BatchSize <= 0 {
		return c, fmt.Errorf("augment: loader: BatchSize must be positive, got %d", c.BatchSize)
	}
	mode, err := ParseMode(string(c.Augment)) // "" is ModeNone; any letter case
	if err != nil {
		return c, err
	}
	c.Augment = mode
	switch {
	case c.Workers < 0:
		return c, fmt.Errorf("augment: loader: Workers must not be negative, got %d", c.Workers)
	case c.Workers == 0:
		c.Workers = runtime.NumCPU()
	}
	switch {
	case c.Prefetch < 0:
		return c, fmt.Errorf("augment: loader: Prefetch must not be negative, got %d", c.Prefetch)
	case c.Prefetch == 0:
		c.Prefetch = DefaultPrefetch
	}
	if c.Cache && c.CacheBudgetBytes <= 0 {
		return c, errors.New("augment: loader: Cache needs a positive CacheBudgetBytes")
	}
	if c.MaxPixels < 0 {
		return c, fmt.Errorf("augment: loader: MaxPixels must not be negative, got %d", c.MaxPixels)
	}
	if err := c.Shard.validate(); err != nil {
		return c, err
	}
	return c, nil
}

// Config returns the loader's configuration with its defaults filled in.
func (l *Loader) Config() LoaderConfig { return l.cfg }

// Len is the number of images an epoch plans: the number of samples,
// doubled in ModeDouble. Skipped files still count, and so do the images of
// a last partial batch that DropLast drops (Steps × BatchSize are used).
// With a Shard it is still the whole epoch's, every task's images.
func (l *Loader) Len() int {
	if l.cfg.Augment == ModeDouble {
		return 2 * len(l.samples)
	}
	return len(l.samples)
}

// Steps is the number of batches per epoch (the last one partial unless
// DropLast): with a Shard, this task's, which with DropLast is the same on
// every task. A batch whose every file was skipped is not sent, so an epoch
// can yield fewer batches than Steps.
func (l *Loader) Steps() int {
	n := l.cfg.Shard.Len(l.Len(), l.cfg.BatchSize, l.cfg.DropLast)
	return (n + l.cfg.BatchSize - 1) / l.cfg.BatchSize
}

// Skipped returns the images skipped so far, each once, sorted by sample
// order.
func (l *Loader) Skipped() []SkipReport { return l.skips.reports() }

// inFlight is the number of batches being filled at once: enough for every
// worker to have an image to work on at a batch boundary.
func (l *Loader) inFlight() int {
	return max(1, (l.cfg.Workers+l.cfg.BatchSize-1)/l.cfg.BatchSize)
}

// maxLiveBatches bounds the batch buffers alive at once in an epoch whose
// consumer releases each batch before taking the next: the batches being
// filled (inFlight queued plus one the dispatcher holds), one waiting to be
// sent, Prefetch sent, and one held by the consumer.
func (l *Loader) maxLiveBatches() int {
	return l.inFlight() + 1 + 1 + l.cfg.Prefetch + 1
}

func mib(n int64) float64 { return float64(n) / (1 << 20) }
