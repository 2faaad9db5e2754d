package report

import (
	"reflect"
	"strings"
	"testing"
)

func TestNiceTicks(t *testing.T) {
	tests := []struct {
		min, max float64
		integer  bool
		want     []string // the labels
	}{
		{0.5, 100.5, true, []string{"20", "40", "60", "80", "100"}},
		{62, 71.2, false, []string{"62", "64", "66", "68", "70"}},
		{0.3, 0.92, false, []string{"0.4", "0.6", "0.8"}},
		{48, 77, false, []string{"50", "55", "60", "65", "70", "75"}},
		{0, 1.2, false, []string{"0.0", "0.2", "0.4", "0.6", "0.8", "1.0", "1.2"}},
		{0, 15, false, []string{"0.0", "2.5", "5.0", "7.5", "10.0", "12.5", "15.0"}},
		{1, 3, true, []string{"1", "2", "3"}},
	}
	for _, tc := range tests {
		var got []string
		for _, tk := range (niceTicks{integer: tc.integer}).Ticks(tc.min, tc.max) {
			if tk.Value < tc.min || tk.Value > tc.max {
				t.Errorf("[%v, %v]: tick %v outside the range", tc.min, tc.max, tk.Value)
			}
			if tk.Label != "" {
				got = append(got, tk.Label)
			}
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("[%v, %v]: labels %q, want %q", tc.min, tc.max, got, tc.want)
		}
	}
}

func TestInlineSVG(t *testing.T) {
	in := "<?xml version=\"1.0\"?>\n<!-- Generated -->\n<svg width=\"10pt\" xmlns=\"http://www.w3.org/2000/svg\"><text style=\"font-family:Liberation Sans;font-size:10px\">a</text></svg>\n"
	got := inlineSVG([]byte(in), `a "b"`)
	if !strings.HasPrefix(got, `<svg role="img" aria-label="a &quot;b&quot;"`) || strings.Contains(got, "<?xml") ||
		!strings.Contains(got, "font-family:'Liberation Sans',Arial,Helvetica,sans-serif;") {
		t.Errorf("inlineSVG = %s", got)
	}
	if err := svgRoot([]byte(got)); err != nil {
		t.Error(err)
	}
}

func TestShorten(t *testing.T) {
	if got := shorten("short", 10); got != "short" {
		t.Errorf("shorten kept %q", got)
	}
	got := shorten("sweep/alexnet-b128-adam-lr1e-4-wd1e-3-do0.8", 20)
	if len([]rune(got)) != 20 || !strings.HasSuffix(got, "wd1e-3-do0.8") || !strings.Contains(got, "…") {
		t.Errorf("shorten = %q", got)
	}
}
