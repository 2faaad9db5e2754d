// Package testlog holds the log buffer tests share: a server's or a child
// process's output, written by other goroutines while the test reads it
// (in the spirit of net/http/httptest: a helper package for tests only).
package testlog

import (
	"bytes"
	"strings"
	"sync"
	"time"
)

// Buffer is a bytes.Buffer safe for concurrent writers and readers.
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// WaitFor returns the content once it contains want, or whatever it holds
// after d (the caller checks): a server logs a request after answering it.
func (b *Buffer) WaitFor(want string, d time.Duration) string {
	for deadline := time.Now().Add(d); ; time.Sleep(10 * time.Millisecond) {
		s := b.String()
		if strings.Contains(s, want) || time.Now().After(deadline) {
			return s
		}
	}
}
