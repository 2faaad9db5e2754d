package augment

import "sync/atomic"

// batchBuffers is the storage of one batch, recycled through a bufferPool.
type batchBuffers struct {
	images []float32 // BatchSize × Size × Size × 3
	labels []int32
	paths  []string
	ok     []bool // per slot: the image was loaded (false: skipped)
}

// bufferPool is a bounded free list of batch buffers. Unlike sync.Pool it
// is never emptied by the garbage collector, so a training loop that
// releases its batches allocates no batch buffer after the first few.
// get never blocks: if the consumer keeps batches without releasing them
// the pool allocates more (and put drops the excess), so a forgotten
// Release costs memory, never a deadlock.
type bufferPool struct {
	free      chan *batchBuffers
	batchSize int
	imageLen  int          // float32 values per image
	allocated atomic.Int64 // buffers ever allocated, for tests
}

func newBufferPool(capacity, batchSize, imageLen int) *bufferPool {
	return &bufferPool{
		free:      make(chan *batchBuffers, capacity),
		batchSize: batchSize,
		imageLen:  imageLen,
	}
}

func (p *bufferPool) get() *batchBuffers {
	select {
	case b := <-p.free:
		return b
	default:
	}
	p.allocated.Add(1)
	return &batchBuffers{
		images: make([]float32, p.batchSize*p.imageLen),
		labels: make([]int32, p.batchSize),
		paths:  make([]string, p.batchSize),
		ok:     make([]bool, p.batchSize),
	}
}

func (p *bufferPool) put(b *batchBuffers) {
	clear(b.paths) // do not keep path strings alive through the pool
	select {
	case p.free <- b:
	default:
	}
}
