package cluster

import (
	"io"
	"os"
	"strings"
	"sync"
)

// tailWriter passes a task's output on to its log file and keeps the last
// lines, which the supervisor shows when that task fails: the reason is
// usually in them, and the log is one more file to open.
type tailWriter struct {
	w    io.Writer
	f    *os.File // the log, closed when the task has ended
	keep int

	mu      sync.Mutex // stdout and stderr are copied by two goroutines
	partial []byte
	last    []string
}

// Write passes p on, keeping the lines it ends (at \n or \r: a progress
// line redrawn in place counts as one).
func (t *tailWriter) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.partial = append(t.partial, p...)
	for {
		i := strings.IndexAny(string(t.partial), "\n\r")
		if i < 0 {
			break
		}
		if line := strings.TrimSpace(string(t.partial[:i])); line != "" {
			t.last = append(t.last, line)
			if len(t.last) > t.keep {
				t.last = t.last[len(t.last)-t.keep:]
			}
		}
		t.partial = t.partial[i+1:]
	}
	return t.w.Write(p)
}

// lines returns the last lines written, and the unfinished one if any.
func (t *tailWriter) lines() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := append([]string(nil), t.last...)
	if line := strings.TrimSpace(string(t.partial)); line != "" {
		out = append(out, line)
	}
	return out
}
