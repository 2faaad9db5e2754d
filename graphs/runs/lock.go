package runs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// lockFile is the file in a run folder that the process writing the run
// holds an exclusive flock on. It records "PID HOST" for the error a second
// writer gets; the lock itself, not the file, is what counts: the kernel
// drops it when the process dies, even by kill -9, so a lock is never stale.
const lockFile = ".lock"

// ErrLocked is wrapped by LockDir's error when another process holds the
// run folder.
var ErrLocked = errors.New("run folder in use")

// Lock is a process's exclusive hold on a run folder.
type Lock struct {
	f    *os.File
	dir  string
	made bool // LockDir created dir
}

// LockDir takes the run folder dir for writing (creating dir if needed), or
// fails at once, with an error wrapping ErrLocked and naming the process
// that holds it. Two writers of one run (two resumes of it) would otherwise
// both append metrics and write checkpoints.
func LockDir(dir string) (*Lock, error) {
	_, statErr := os.Stat(dir)
	made := errors.Is(statErr, os.ErrNotExist)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, lockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	// A reader probing the lock (ReadStatus's crash check) holds it for a
	// few microseconds: retry briefly before calling the folder taken.
	for try := 0; ; try++ {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if !errors.Is(err, syscall.EWOULDBLOCK) || try == 10 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if errors.Is(err, syscall.EWOULDBLOCK) {
		owner := "another process"
		if pid, host := readLockOwner(path); pid > 0 {
			owner = fmt.Sprintf("process %d on %s", pid, host)
		}
		f.Close()
		return nil, fmt.Errorf("%w: %s is being written by %s (a train still running?): wait for it or stop it first", ErrLocked, dir, owner)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("locking %s: %w", path, err)
	}
	host, _ := os.Hostname()
	if err := f.Truncate(0); err == nil {
		_, err = f.WriteAt([]byte(fmt.Sprintf("%d %s\n", os.Getpid(), host)), 0)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("locking %s: %w", path, err)
	}
	return &Lock{f: f, dir: dir, made: made}, nil
}

// Abandon gives up a run folder no run was written into: when LockDir
// created the folder and it still holds only the lock file, both are
// removed, so that a train failing before its run starts (a missing GPU, a
// dataset error found late) leaves no empty folder behind that the next
// train would call taken. Otherwise it is Release.
func (l *Lock) Abandon() error {
	if l == nil || l.f == nil {
		return nil
	}
	entries, err := os.ReadDir(l.dir)
	if !l.made || err != nil || len(entries) != 1 || entries[0].Name() != lockFile {
		return l.Release()
	}
	// Removed while still held: a second train that opened the lock file
	// meanwhile gets the folder's error when it writes, not a silent race.
	os.Remove(filepath.Join(l.dir, lockFile))
	l.Release()
	return os.Remove(l.dir)
}

// Release gives the run folder up. The lock file stays: removing it would
// let a process that opened it just before lock a file no one else sees.
func (l *Lock) Release() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := l.f.Close() // closing the last descriptor drops the flock
	l.f = nil
	return err
}

// readLockOwner returns the PID and host recorded in a lock file.
func readLockOwner(path string) (int, string) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, ""
	}
	pidText, host, _ := strings.Cut(strings.TrimSpace(string(data)), " ")
	pid, err := strconv.Atoi(pidText)
	if err != nil {
		return 0, ""
	}
	return pid, host
}

// lockHeld reports whether some process holds dir's run lock: false when
// there is no lock file (a run of an older kfash-tf) or it can be taken.
// known is false when it cannot tell.
func lockHeld(dir string) (held, known bool) {
	f, err := os.Open(filepath.Join(dir, lockFile))
	if err != nil {
		return false, false
	}
	defer f.Close()
	err = syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB)
	switch {
	case err == nil:
		return false, true // closing f releases it
	case errors.Is(err, syscall.EWOULDBLOCK):
		return true, true
	}
	return false, false
}

// processGone reports whether pid is certainly not a live process of this
// host (kill(pid, 0) fails with ESRCH).
func processGone(pid int) bool {
	if pid <= 0 {
		return false
	}
	return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}
