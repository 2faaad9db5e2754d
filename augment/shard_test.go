package augment

import (
	"reflect"
	"testing"
)

// The shard arithmetic: every task gets the same number of full batches
// with DropLast, the blocks of step j make up global batch j, and without
// DropLast every position is read by exactly one task.
func TestShardTake(t *testing.T) {
	for _, c := range []struct{ n, batch, tasks int }{
		{96, 16, 2}, {100, 16, 2}, {7, 2, 3}, {30, 4, 3}, {5, 8, 2}, {1, 1, 4}, {64, 8, 1},
	} {
		global := c.batch * c.tasks
		full := c.n / global
		var lens []int
		owner := make([]int, c.n)
		for i := range owner {
			owner[i] = -1
		}
		for task := 0; task < c.tasks; task++ {
			s := Shard{Index: task, Count: c.tasks}
			dropped := s.Take(c.n, c.batch, true)
			if len(dropped) != full*c.batch || s.Len(c.n, c.batch, true) != len(dropped) {
				t.Errorf("%+v task %d: DropLast takes %d (Len %d), want %d", c, task, len(dropped), s.Len(c.n, c.batch, true), full*c.batch)
			}
			for i, p := range dropped {
				step, k := i/c.batch, i%c.batch
				if want := step*global + task*c.batch + k; p != want {
					t.Fatalf("%+v task %d: image %d of its epoch is position %d, want %d (block %d of global batch %d)", c, task, i, p, want, task, step)
				}
			}
			all := s.Take(c.n, c.batch, false)
			if s.Len(c.n, c.batch, false) != len(all) {
				t.Errorf("%+v task %d: Len %d, Take %d", c, task, s.Len(c.n, c.batch, false), len(all))
			}
			lens = append(lens, len(all))
			for _, p := range all {
				if owner[p] != -1 {
					t.Fatalf("%+v: position %d read by tasks %d and %d", c, p, owner[p], task)
				}
				owner[p] = task
			}
		}
		for p, o := range owner {
			if o == -1 {
				t.Errorf("%+v: position %d read by no task (shares %v)", c, p, lens)
			}
		}
	}
	// One task is the whole epoch.
	if got := (Shard{}).Take(5, 2, false); !reflect.DeepEqual(got, []int{0, 1, 2, 3, 4}) {
		t.Errorf("no shard takes %v", got)
	}
}

// Two tasks at batch 4 read, step by step, the global batches one loader at
// batch 8 reads (same seed, shuffle and augmentation), and the same number
// of steps each; validation shards cover the split once.
func TestLoaderShardsMakeGlobalBatches(t *testing.T) {
	samples := makeImageDir(t, t.TempDir(), []string{"a", "b", "c"}, 7) // 21 images: 2 global batches of 8, 5 dropped
	base := LoaderConfig{Size: 8, Shuffle: true, Augment: ModeOnline, Seed: 5, Workers: 2, DropLast: true}
	whole := base
	whole.BatchSize = 8
	ref := runEpoch(t, newTestLoader(t, samples, whole), 3)
	var tasks [2]epochResult
	for i := range tasks {
		cfg := base
		cfg.BatchSize, cfg.Shard = 4, Shard{Index: i, Count: 2}
		l := newTestLoader(t, samples, cfg)
		if l.Steps() != 2 {
			t.Errorf("task %d: %d steps, want 2", i, l.Steps())
		}
		tasks[i] = runEpoch(t, l, 3)
	}
	if len(ref.batches) != 2 || len(tasks[0].batches) != 2 || len(tasks[1].batches) != 2 {
		t.Fatalf("batches: whole %v, tasks %v %v", ref.batches, tasks[0].batches, tasks[1].batches)
	}
	for step := 0; step < 2; step++ {
		var joined []string
		var images [][]float32
		for _, r := range tasks {
			joined = append(joined, r.paths[step*4:(step+1)*4]...)
			images = append(images, r.images[step*4:(step+1)*4]...)
		}
		if !reflect.DeepEqual(joined, ref.paths[step*8:(step+1)*8]) || !reflect.DeepEqual(images, ref.images[step*8:(step+1)*8]) {
			t.Errorf("step %d: the tasks' batches %v are not global batch %v", step, joined, ref.paths[step*8:(step+1)*8])
		}
	}

	seen := map[string]int{}
	for i := 0; i < 3; i++ {
		l := newTestLoader(t, samples, LoaderConfig{Size: 8, BatchSize: 4, Workers: 1, Shard: Shard{Index: i, Count: 3}})
		for _, p := range runEpoch(t, l, 0).paths {
			seen[p]++
		}
	}
	for _, s := range samples {
		if seen[s.Path] != 1 {
			t.Errorf("validation shards read %s %d times", s.Path, seen[s.Path])
		}
	}

	if _, err := NewLoader(samples, LoaderConfig{Size: 8, BatchSize: 4, Shard: Shard{Index: 2, Count: 2}}); err == nil {
		t.Error("shard index 2 of 2 accepted")
	}
	if _, err := NewLoader(samples, LoaderConfig{Size: 8, BatchSize: 8, DropLast: true, Shard: Shard{Count: 3}}); err == nil {
		t.Error("3 tasks × 8 > 21 images with DropLast accepted")
	}
}
