package augment

import (
	"fmt"
	"sort"
	"sync"
)

// SkipReport describes an image the loader could not use: unreadable,
// truncated, not an image, or too large. Such an image is reported once,
// left out of its batch, and not read again in later epochs.
type SkipReport struct {
	// Path is the image file.
	Path string
	// Label is the sample's class index.
	Label int
	// Err is the decoding error; its message names the path and the reason.
	Err error
}

// String is the error message, which already names the path.
func (r SkipReport) String() string {
	if r.Err == nil {
		return fmt.Sprintf("augment: %s: skipped", r.Path)
	}
	return r.Err.Error()
}

// skipList remembers the samples that failed, by sample index, shared by
// every worker and every epoch of one loader.
type skipList struct {
	mu      sync.Mutex
	failed  map[int]SkipReport
	ordered []int // sample indices in the order they failed

	onSkipMu sync.Mutex // serialises onSkip calls, outside mu
	onSkip   func(SkipReport)
}

func newSkipList(onSkip func(SkipReport)) *skipList {
	return &skipList{failed: map[int]SkipReport{}, onSkip: onSkip}
}

// has reports whether sample index i already failed.
func (s *skipList) has(i int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.failed[i]
	return ok
}

// add records the failure of sample i unless it is already recorded (two
// workers may decode the same file at once in ModeDouble), and calls the
// callback for a new one. The callback runs outside mu, so that it may call
// Loader.Skipped, but under its own lock, so that it is never called
// concurrently with itself.
func (s *skipList) add(i int, r SkipReport) {
	s.mu.Lock()
	_, seen := s.failed[i]
	if !seen {
		s.failed[i] = r
		s.ordered = append(s.ordered, i)
	}
	s.mu.Unlock()
	if seen || s.onSkip == nil {
		return
	}
	s.onSkipMu.Lock()
	defer s.onSkipMu.Unlock()
	s.onSkip(r)
}

// reports returns every failure so far, sorted by sample index so that the
// list does not depend on the workers' timing.
func (s *skipList) reports() []SkipReport {
	s.mu.Lock()
	defer s.mu.Unlock()
	idx := append([]int(nil), s.ordered...)
	sort.Ints(idx)
	out := make([]SkipReport, len(idx))
	for k, i := range idx {
		out[k] = s.failed[i]
	}
	return out
}
