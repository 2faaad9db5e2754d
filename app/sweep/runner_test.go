package sweep

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
)

func TestSweepTailWriterKeepsLastLines(t *testing.T) {
	var sink strings.Builder
	tw := &tailWriter{w: &sink, keep: 2}
	fmt.Fprint(tw, "one\ntwo\n\nthr")
	fmt.Fprint(tw, "ee\rprogress\nfour")
	if got := tw.lines(); !reflect.DeepEqual(got, []string{"three", "progress", "four"}) {
		t.Errorf("lines %q", got)
	}
	if sink.String() != "one\ntwo\n\nthree\rprogress\nfour" {
		t.Errorf("passed through %q", sink.String())
	}
}
