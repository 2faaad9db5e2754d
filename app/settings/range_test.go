package settings

import (
	"math"
	"testing"
)

func TestRangeContains(t *testing.T) {
	r := Fraction()
	for v, want := range map[float64]bool{0: true, 0.5: true, 1: false, -0.1: false, math.NaN(): false, math.Inf(1): false} {
		if got := r.Contains(v); got != want {
			t.Errorf("[0, 1) contains %v = %v, want %v", v, got, want)
		}
	}
	if p := Positive(); p.Contains(0) || !p.Contains(1e-9) {
		t.Errorf("(0, ∞): contains(0) = %v, contains(1e-9) = %v", p.Contains(0), p.Contains(1e-9))
	}
}

func TestRangeString(t *testing.T) {
	cases := []struct {
		r    *Range
		want string
	}{
		{AtLeast(0), "must not be negative"},
		{AtLeast(1), "must be at least 1"},
		{Positive(), "must be a positive number"},
		{&Range{Lo: 2, Hi: math.Inf(1), LoOpen: true}, "must be greater than 2"},
		{Fraction(), "must be in [0, 1)"},
		{&Range{Lo: 0, Hi: 1, LoOpen: true}, "must be in (0, 1]"},
		{Between(1, 1e15), "must be in [1, 1e+15]"},
		{Between(0, 1<<30), "must be in [0, 1073741824]"},
	}
	for _, c := range cases {
		if got := c.r.String(); got != c.want {
			t.Errorf("%+v: %q, want %q", *c.r, got, c.want)
		}
	}
}
