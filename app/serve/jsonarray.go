package serve

import (
	"errors"
	"fmt"
	"strconv"
)

// The JSON the request parser reads by hand: nested arrays of numbers
// (an image is tens of thousands of them, too many for a []any tree) and
// the kind of a raw value, for error messages.

// maxTensorRank bounds the nesting of a numeric array: deeper arrays are
// refused before recursing further.
const maxTensorRank = 8

// firstByte is the first byte of raw after JSON white space (0 for none).
func firstByte(raw []byte) byte {
	for _, c := range raw {
		switch c {
		case ' ', '\t', '\n', '\r':
			continue
		}
		return c
	}
	return 0
}

// jsonKind names the JSON type of raw, for error messages.
func jsonKind(raw []byte) string {
	switch c := firstByte(raw); {
	case c == '[':
		return "a list"
	case c == '{':
		return "an object"
	case c == '"':
		return "a string"
	case c == 't' || c == 'f':
		return "a boolean"
	case c == 'n':
		return "null"
	case c == 0:
		return "nothing"
	default:
		return "a number"
	}
}

// parseNumbers reads a rectangular nested JSON array of numbers into
// float32 values (row-major) and its shape, without building a []any tree:
// an image is tens of thousands of numbers. sizeHint preallocates.
func parseNumbers(data []byte, sizeHint int) ([]float32, []int, error) {
	return parseNumbersMax(data, sizeHint, 0)
}

// errTooManyNumbers stops parseNumbersMax at its limit.
var errTooManyNumbers = errors.New("too many numbers")

// parseNumbersMax is parseNumbers stopping with errTooManyNumbers after
// maxVals values (0: no limit), before allocating for more: a body of
// numbers is bounded by MaxBody, but its floats take twice the space.
func parseNumbersMax(data []byte, sizeHint, maxVals int) ([]float32, []int, error) {
	if maxVals > 0 {
		sizeHint = min(sizeHint, maxVals)
	}
	p := numParser{data: data, leaf: -1, vals: make([]float32, 0, sizeHint), max: maxVals}
	for i := range p.dims {
		p.dims[i] = -1
	}
	if err := p.value(0); err != nil {
		return nil, nil, err
	}
	p.skipSpace()
	if p.pos != len(p.data) {
		return nil, nil, fmt.Errorf("unexpected %q after the array", p.data[p.pos])
	}
	if p.leaf <= 0 {
		return nil, nil, errors.New("expected an array of numbers")
	}
	return p.vals, append([]int(nil), p.dims[:p.leaf]...), nil
}

// numParser is the state of parseNumbersMax.
type numParser struct {
	data []byte
	pos  int
	vals []float32
	dims [maxTensorRank]int // length of the arrays at each depth; -1 until known
	leaf int                // depth of the numbers; -1 until the first one
	max  int                // most values read (0: no limit)
}

func (p *numParser) skipSpace() {
	for p.pos < len(p.data) {
		switch p.data[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

func (p *numParser) value(depth int) error {
	p.skipSpace()
	if p.pos >= len(p.data) {
		return errors.New("unexpected end of the array")
	}
	if p.data[p.pos] != '[' {
		return p.number(depth)
	}
	if p.leaf >= 0 && depth >= p.leaf {
		return fmt.Errorf("ragged array: a list where a number was expected (at depth %d)", depth)
	}
	if depth >= maxTensorRank {
		return fmt.Errorf("array nested deeper than %d levels", maxTensorRank)
	}
	p.pos++
	p.skipSpace()
	if p.pos < len(p.data) && p.data[p.pos] == ']' {
		return fmt.Errorf("empty list at depth %d", depth)
	}
	count := 0
	for {
		if err := p.value(depth + 1); err != nil {
			return err
		}
		count++
		p.skipSpace()
		if p.pos >= len(p.data) {
			return errors.New("unexpected end of the array")
		}
		c := p.data[p.pos]
		p.pos++
		if c == ']' {
			break
		}
		if c != ',' {
			return fmt.Errorf("unexpected %q in an array", c)
		}
	}
	switch d := p.dims[depth]; {
	case d < 0:
		p.dims[depth] = count
	case d != count:
		return fmt.Errorf("ragged array: lists of %d and %d elements at depth %d", d, count, depth)
	}
	return nil
}

// number reads one JSON number as a float32; a fast path takes the plain
// small integers pixel arrays are made of.
func (p *numParser) number(depth int) error {
	if p.leaf < 0 {
		p.leaf = depth
	} else if depth != p.leaf {
		return fmt.Errorf("ragged array: a number where a list was expected (at depth %d)", depth)
	}
	start := p.pos
	v, plain := 0, true
	for p.pos < len(p.data) {
		c := p.data[p.pos]
		if c >= '0' && c <= '9' {
			v = v*10 + int(c-'0')
		} else if c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E' {
			plain = false
		} else {
			break
		}
		p.pos++
	}
	tok := p.data[start:p.pos]
	if len(tok) == 0 {
		return fmt.Errorf("expected numbers (float32 pixels), found %s", jsonKind(p.data[start:]))
	}
	if p.max > 0 && len(p.vals) >= p.max {
		return errTooManyNumbers
	}
	if plain && len(tok) <= 9 {
		p.vals = append(p.vals, float32(v))
		return nil
	}
	f, err := strconv.ParseFloat(string(tok), 32)
	if err != nil {
		return fmt.Errorf("%q is not a float32 number", tok)
	}
	p.vals = append(p.vals, float32(f))
	return nil
}
