package serve

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// gatedModel records the first value of every image of every run (one
// float per image) and holds each run until its gate is closed; started
// gets a value when the first run begins.
type gatedModel struct {
	gate    chan struct{}
	started chan struct{}
	once    sync.Once
	mu      sync.Mutex
	runs    [][]float32
}

func newGatedModel() *gatedModel {
	return &gatedModel{gate: make(chan struct{}), started: make(chan struct{})}
}

func (g *gatedModel) Predict(images []float32, n int) ([]float32, error) {
	g.once.Do(func() { close(g.started) })
	<-g.gate
	g.mu.Lock()
	g.runs = append(g.runs, append([]float32(nil), images...))
	g.mu.Unlock()
	out := make([]float32, 0, 3*n)
	for _, v := range images {
		out = append(out, v, 0, 0)
	}
	return out, nil
}

func (g *gatedModel) PredictBytes(images [][]byte) ([]float32, error) {
	return nil, errors.New("not used")
}

// waitQueued waits until the batcher has been given n jobs in all.
func waitQueued(t *testing.T, b *batcher, n int64) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); b.queued.Load() < n; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d jobs queued, waited for %d", b.queued.Load(), n)
		}
	}
}

// A one-image request that arrives while a 40-image request runs is served
// after about one batch of the large one, not after all ten: the batcher
// takes the requests' chunks round-robin. (It used to queue every chunk of
// the large request first: 33.6 s of waiting behind 2,000 images.)
func TestBatcherRoundRobin(t *testing.T) {
	g := newGatedModel()
	b := newBatcher(g, 3, 1, 4, 0)
	defer b.Close()
	ctx := context.Background()
	big := make([]float32, 40)
	for i := range big {
		big[i] = float32(1000 + i)
	}
	var wg sync.WaitGroup
	wg.Add(2)
	var bigErr, smallErr error
	var smallRows []float32
	go func() { defer wg.Done(); _, bigErr = b.PredictPixels(ctx, big, 40) }()
	<-g.started // the first chunk of the large request is running
	go func() { defer wg.Done(); smallRows, smallErr = b.PredictPixels(ctx, []float32{7}, 1) }()
	waitQueued(t, b, 3) // two chunks of the large request, then the small one
	close(g.gate)
	wg.Wait()
	if bigErr != nil || smallErr != nil || len(smallRows) != 3 || smallRows[0] != 7 {
		t.Fatalf("large: %v; small: %v %v", bigErr, smallRows, smallErr)
	}
	at := -1
	for i, run := range g.runs {
		for _, v := range run {
			if v == 7 {
				at = i
			}
		}
	}
	if at < 0 || at > 2 {
		t.Errorf("the small request ran in model run %d of %d, want one of the first three: %v", at, len(g.runs), g.runs)
	}
}

// The queued chunks of a request whose context ends are dropped, not run.
func TestBatcherDropsCancelledWork(t *testing.T) {
	g := newGatedModel()
	b := newBatcher(g, 3, 1, 4, 0)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := b.PredictPixels(ctx, make([]float32, 40), 40)
		done <- err
	}()
	<-g.started
	waitQueued(t, b, 2)
	cancel() // the client went away while its first chunk runs
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("PredictPixels = %v, want context.Canceled", err)
	}
	close(g.gate)
	b.Close() // finishes what is queued
	if len(g.runs) != 1 {
		t.Errorf("%d model runs after the cancel, want only the one in flight", len(g.runs))
	}
	if b.dropped.Load() == 0 {
		t.Error("no job counted as dropped")
	}
}

// A one-image request queued while a large request's run is in flight
// rides in the very next model run, beside the large request's images: the
// batcher fills each run an image from each request in turn. (It used to
// give each run to one request's chunk whole, so the small request waited
// for a full run of the large one's images, then ran nearly alone: with
// 256-image requests in flight, a one-image request's p99 was 12× its quiet
// value.)
func TestBatcherSmallRequestSharesNextRun(t *testing.T) {
	g := newGatedModel()
	b := newBatcher(g, 3, 1, 4, 0)
	defer b.Close()
	ctx := context.Background()
	big := make([]float32, 40)
	for i := range big {
		big[i] = float32(1000 + i)
	}
	var wg sync.WaitGroup
	wg.Add(2)
	var bigRows, smallRows []float32
	var bigErr, smallErr error
	go func() { defer wg.Done(); bigRows, bigErr = b.PredictPixels(ctx, big, 40) }()
	<-g.started // the first chunk of the large request is running
	go func() { defer wg.Done(); smallRows, smallErr = b.PredictPixels(ctx, []float32{7}, 1) }()
	waitQueued(t, b, 3) // two chunks of the large request, then the small one
	close(g.gate)
	wg.Wait()
	if bigErr != nil || smallErr != nil || len(smallRows) != 3 || smallRows[0] != 7 || len(bigRows) != 3*40 {
		t.Fatalf("large: %d rows, %v; small: %v %v", len(bigRows)/3, bigErr, smallRows, smallErr)
	}
	for i := 0; i < 40; i++ {
		if bigRows[3*i] != float32(1000+i) {
			t.Fatalf("large request row %d = %v: rows out of order across runs", i, bigRows[3*i:3*i+3])
		}
	}
	if len(g.runs) < 2 {
		t.Fatalf("%d model runs", len(g.runs))
	}
	next := g.runs[1]
	small, large := 0, 0
	for _, v := range next {
		switch {
		case v == 7:
			small++
		case v >= 1000:
			large++
		}
	}
	if small != 1 || large != 3 {
		t.Errorf("the run after the one in flight holds %v: want the small request's image and 3 of the large one's", next)
	}
	for i, run := range g.runs {
		if len(run) > 4 {
			t.Errorf("run %d has %d images with a batch of 4", i, len(run))
		}
	}
}
