package augment

import "math/rand/v2"

// Random streams. Every random decision of the loader draws from its own
// generator, seeded from (seed, stream, epoch, index) alone, so that the
// result never depends on which goroutine ran first or how many there are.
const (
	streamShuffle uint64 = iota + 1
	streamOnline
	streamCopy
)

// newRNG returns a generator for one decision. PCG is small and cheap to
// seed (unlike math/rand's 5 KB source), so one per image costs nothing.
func newRNG(seed int64, stream uint64, epoch, index int) *rand.Rand {
	// Chaining a bijective mix makes every (seed, stream, epoch, index)
	// give its own state.
	hi := splitmix64(splitmix64(uint64(seed)) ^ stream)
	lo := splitmix64(splitmix64(hi^uint64(int64(epoch))) ^ uint64(int64(index)))
	return rand.New(rand.NewPCG(hi, lo))
}

// splitmix64 is the SplitMix64 finaliser: a bijective mix in which every
// input bit affects every output bit, so that neighbouring seeds, epochs and
// indices give unrelated generators.
func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}
