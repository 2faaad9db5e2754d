package settings

import (
	"fmt"
	"math"
	"strconv"
)

// Range is the set of accepted values of a numeric flag: an interval whose
// ends may be open, and may be infinite. The checks of every command's
// flags use it, the train settings' (Setting.Range) and others'.
type Range struct {
	Lo, Hi         float64
	LoOpen, HiOpen bool
}

// AtLeast accepts [lo, ∞).
func AtLeast(lo float64) *Range { return &Range{Lo: lo, Hi: math.Inf(1)} }

// Positive accepts (0, ∞).
func Positive() *Range { return &Range{Lo: 0, Hi: math.Inf(1), LoOpen: true} }

// Between accepts [lo, hi].
func Between(lo, hi float64) *Range { return &Range{Lo: lo, Hi: hi} }

// Fraction accepts [0, 1): rates such as dropout and label smoothing, for
// which 1 would leave nothing to learn from.
func Fraction() *Range { return &Range{Lo: 0, Hi: 1, HiOpen: true} }

// Limits shared by several commands. Goroutine and thread counts are
// bounded so that a typo (--workers 1000000) is an error rather than a
// machine brought down by a million goroutines each holding an image.
var (
	// WorkersRange bounds goroutine counts (--workers).
	WorkersRange = Between(1, 1024)
	// ThreadsRange bounds TensorFlow's thread counts (0: its default).
	ThreadsRange = Between(0, 4096)
	// BatchRange bounds batch sizes.
	BatchRange = AtLeast(1)
)

// Contains reports whether v is in r; NaN is in no range.
func (r *Range) Contains(v float64) bool {
	if math.IsNaN(v) {
		return false
	}
	if v < r.Lo || (r.LoOpen && v == r.Lo) {
		return false
	}
	return v < r.Hi || (!r.HiOpen && v == r.Hi)
}

// String is the requirement in words, e.g. "must be in [0, 1)" or "must be
// at least 1".
func (r *Range) String() string {
	switch {
	case math.IsInf(r.Hi, 1) && !r.LoOpen && r.Lo == 0:
		return "must not be negative"
	case math.IsInf(r.Hi, 1) && !r.LoOpen:
		return "must be at least " + FormatNum(r.Lo)
	case math.IsInf(r.Hi, 1) && r.Lo == 0:
		return "must be a positive number"
	case math.IsInf(r.Hi, 1):
		return "must be greater than " + FormatNum(r.Lo)
	}
	open, closeB := "[", "]"
	if r.LoOpen {
		open = "("
	}
	if r.HiOpen {
		closeB = ")"
	}
	return fmt.Sprintf("must be in %s%s, %s%s", open, FormatNum(r.Lo), FormatNum(r.Hi), closeB)
}

// FormatNum spells v as typed: whole numbers in full (1073741824, not
// 1.073741824e+09), others in the shortest form.
func FormatNum(v float64) string {
	if v == math.Trunc(v) && math.Abs(v) < 1e15 {
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}
