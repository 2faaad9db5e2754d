package graphs_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/kfash-tf/kfash-tf/graphs"
)

// TensorFlow's OOM hint is cut from an error (a full disk is no OOM), the
// error chain kept.
func TestStripTFHint(t *testing.T) {
	base := errors.New("saving checkpoint runs/x/variables: Resource exhausted: runs/x/variables.data-00000-of-00001; No space left on device\n" +
		"\t [[{{node save/save}}]]\n" +
		"Hint: If you want to see a list of allocated tensors when OOM happens, add report_tensor_allocations_upon_oom to RunOptions for current allocation info. This isn't available when running in Eager mode.\n")
	got := graphs.StripTFHint(base)
	if strings.Contains(got.Error(), "Hint") || strings.Contains(got.Error(), "OOM") || !strings.Contains(got.Error(), "No space left on device") {
		t.Errorf("stripped: %q", got)
	}
	if !errors.Is(got, base) {
		t.Error("the stripped error lost its chain")
	}
	plain := errors.New("plain")
	if graphs.StripTFHint(plain) != plain || graphs.StripTFHint(nil) != nil {
		t.Error("an error without the hint changed")
	}
}
