package tail

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
)

func TestWriterKeepsLastLines(t *testing.T) {
	var sink strings.Builder
	tw := &Writer{W: &sink, Keep: 2}
	fmt.Fprint(tw, "one\ntwo\n\nthr")
	fmt.Fprint(tw, "ee\rprogress\nfour")
	if got := tw.Lines(); !reflect.DeepEqual(got, []string{"three", "progress", "four"}) {
		t.Errorf("lines %q", got)
	}
	if sink.String() != "one\ntwo\n\nthree\rprogress\nfour" {
		t.Errorf("passed through %q", sink.String())
	}
}
