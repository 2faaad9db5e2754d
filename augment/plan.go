package augment

// entry is one image of an epoch: which sample, transformed how.
type entry struct {
	sample int
	tf     Transform
}

// plan lists the images of an epoch in the order they are batched. It is a
// pure function of (samples, config, epoch): every random choice comes from
// a generator seeded by (Seed, epoch, sample index), never from a shared
// one, so the plan is identical for any number of workers.
func (l *Loader) plan(epoch int) []entry {
	n := len(l.samples)
	entries := make([]entry, 0, l.Len())
	for i := 0; i < n; i++ {
		e := entry{sample: i}
		if l.cfg.Augment == ModeOnline {
			e.tf = onlineTransform(newRNG(l.cfg.Seed, streamOnline, epoch, i))
		}
		entries = append(entries, e)
	}
	if l.cfg.Augment == ModeDouble {
		for i := 0; i < n; i++ {
			// The epoch is deliberately not part of the seed: the
			// copies are the same every epoch, as if written to disk.
			entries = append(entries, entry{sample: i, tf: copyTransform(newRNG(l.cfg.Seed, streamCopy, 0, i))})
		}
	}
	if l.cfg.Shuffle {
		rng := newRNG(l.cfg.Seed, streamShuffle, epoch, 0)
		rng.Shuffle(len(entries), func(a, b int) { entries[a], entries[b] = entries[b], entries[a] })
	}
	if l.cfg.Shard.tasks() > 1 {
		positions := l.cfg.Shard.Take(len(entries), l.cfg.BatchSize, l.cfg.DropLast)
		mine := make([]entry, len(positions))
		for i, p := range positions {
			mine[i] = entries[p]
		}
		return mine
	}
	if l.cfg.DropLast {
		entries = entries[:l.Steps()*l.cfg.BatchSize]
	}
	return entries
}
