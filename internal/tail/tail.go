// Package tail keeps the last lines of a child process's output while
// passing it on: the sweep and cluster-local show them when a child fails,
// since the reason is usually there.
package tail

import (
	"io"
	"strings"
	"sync"
)

// Writer passes everything written on to W and keeps the last Keep lines.
// It is safe for concurrent writers (a child's stdout and stderr are
// copied by two goroutines).
type Writer struct {
	W    io.Writer
	Keep int

	mu      sync.Mutex
	partial []byte
	last    []string
}

// Write passes p on, keeping the lines it ends (at \n or \r: a progress
// line redrawn in place counts as one).
func (t *Writer) Write(p []byte) (int, error) {
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
			if len(t.last) > t.Keep {
				t.last = t.last[len(t.last)-t.Keep:]
			}
		}
		t.partial = t.partial[i+1:]
	}
	return t.W.Write(p)
}

// Lines returns the last lines written, and the unfinished one if any.
func (t *Writer) Lines() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := append([]string(nil), t.last...)
	if line := strings.TrimSpace(string(t.partial)); line != "" {
		out = append(out, line)
	}
	return out
}
