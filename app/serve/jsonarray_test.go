package serve

import (
	"fmt"
	"strings"
	"testing"
)

func TestParseNumbers(t *testing.T) {
	for _, c := range []struct {
		in    string
		shape []int
		vals  []float32
		err   string
	}{
		{in: `[1, 2.5, -3e2]`, shape: []int{3}, vals: []float32{1, 2.5, -300}},
		{in: ` [[0,255],[ 7 , 8 ]] `, shape: []int{2, 2}, vals: []float32{0, 255, 7, 8}},
		{in: `[[[1],[2]],[[3],[4]]]`, shape: []int{2, 2, 1}, vals: []float32{1, 2, 3, 4}},
		{in: `[[1,2],[3]]`, err: "ragged"},
		{in: `[[1,2],3]`, err: "ragged"},
		{in: `[1,[2]]`, err: "ragged"},
		{in: `[]`, err: "empty list"},
		{in: `[1,"a"]`, err: "found a string"},
		{in: `[1,null]`, err: "found null"},
		{in: `[1e99]`, err: "not a float32"},
		{in: `[1,2`, err: "unexpected end"},
		{in: `[1 2]`, err: "unexpected"},
		{in: `7`, err: "expected an array"},
		{in: strings.Repeat("[", 20) + "1" + strings.Repeat("]", 20), err: "deeper than"},
	} {
		vals, shape, err := parseNumbers([]byte(c.in), 0)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("parseNumbers(%s) = %v, want an error containing %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil || fmt.Sprint(shape) != fmt.Sprint(c.shape) || fmt.Sprint(vals) != fmt.Sprint(c.vals) {
			t.Errorf("parseNumbers(%s) = %v %v %v, want %v %v", c.in, vals, shape, err, c.vals, c.shape)
		}
	}
}
