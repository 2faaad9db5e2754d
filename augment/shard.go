package augment

import "fmt"

// Shard is one task's part of an epoch that Count tasks read together, each
// at the same BatchSize, in synchronous data-parallel training.
//
// The epoch's plan (the same seeded shuffle on every task) is cut into
// global batches of Count × BatchSize images, and task Index takes the
// Index-th block of BatchSize images of each: step j of the Count tasks
// together trains on exactly global batch j of one process at batch
// Count × BatchSize, so the two runs see the same data in the same steps.
// With DropLast every task gets the same number of full batches (a last
// global batch that would be short is dropped by all, so that no task waits
// for a step the others never take). Without it (validation) the last
// global batch is shared out in order: later tasks may get a short batch or
// none, and every image is read by exactly one task.
//
// The zero value (Count 0) and Count 1 are the whole epoch.
type Shard struct {
	Index int // this task, 0 … Count−1
	Count int // the number of tasks reading the epoch
}

// tasks is the number of tasks sharing the epoch, at least 1.
func (s Shard) tasks() int { return max(1, s.Count) }

func (s Shard) validate() error {
	if s.Count < 0 || s.Index < 0 || s.Index >= s.tasks() {
		return fmt.Errorf("augment: loader: shard %d of %d: want 0 ≤ index < count", s.Index, s.Count)
	}
	return nil
}

// Take returns the positions in an epoch's plan of n images that the task
// reads, in order, at the given batch size.
func (s Shard) Take(n, batch int, dropLast bool) []int {
	global := batch * s.tasks()
	out := make([]int, 0, s.Len(n, batch, dropLast))
	for lo := 0; lo < n; lo += global {
		if dropLast && lo+global > n {
			break
		}
		start := lo + s.Index*batch
		for p := start; p < min(start+batch, n); p++ {
			out = append(out, p)
		}
	}
	return out
}

// Len is the number of images the task reads of an epoch of n: len(Take(n,
// batch, dropLast)).
func (s Shard) Len(n, batch int, dropLast bool) int {
	global := batch * s.tasks()
	full, rest := n/global, n%global
	if dropLast {
		return full * batch
	}
	return full*batch + min(batch, max(0, rest-s.Index*batch))
}
