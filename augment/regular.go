package augment

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"
)

// ErrNotRegular is wrapped by the errors of paths that are not regular files
// (named pipes, devices, sockets, folders). Reading a named pipe blocks until
// a writer appears, which would hang a training run or 'data stats' for good,
// so such files are never read.
var ErrNotRegular = errors.New("not a regular file")

// fileKind names the type of a file mode in messages, e.g. "named pipe".
func fileKind(m fs.FileMode) string {
	switch {
	case m.IsRegular():
		return "regular file"
	case m&fs.ModeDir != 0:
		return "folder"
	case m&fs.ModeNamedPipe != 0:
		return "named pipe (FIFO)"
	case m&fs.ModeSocket != 0:
		return "socket"
	case m&fs.ModeCharDevice != 0:
		return "character device"
	case m&fs.ModeDevice != 0:
		return "device"
	case m&fs.ModeSymlink != 0:
		return "symbolic link"
	case m&fs.ModeIrregular != 0:
		return "irregular file"
	}
	return "special file"
}

// notRegularError is the error for a file of mode m that is not regular.
func notRegularError(m fs.FileMode) error {
	return fmt.Errorf("%w: it is a %s", ErrNotRegular, fileKind(m))
}

// openRegular opens path for reading only if it is a regular file, following
// symbolic links. It opens with O_NONBLOCK, so that opening a named pipe
// returns at once instead of waiting for a writer, then checks the type of
// what was actually opened (fstat): a file listed as regular that was
// replaced by a pipe or a device since is an error, not a hang. For a
// regular file O_NONBLOCK changes nothing: reads of disk files never wait
// for a writer. Errors drop the *fs.PathError wrapper, as callers name the path.
func openRegular(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, unwrapPathError(err)
	}
	info, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, unwrapPathError(err)
	}
	if !info.Mode().IsRegular() {
		f.Close()
		return nil, notRegularError(info.Mode())
	}
	return f, nil
}

// readRegular reads the whole regular file at path (see openRegular).
func readRegular(path string) ([]byte, error) {
	f, err := openRegular(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(f)
	if err != nil {
		return nil, unwrapPathError(err)
	}
	return data, nil
}

// OpenRegularFile opens the file at path for reading, like os.Open, but
// only if it is a regular file (symbolic links followed): a named pipe,
// device or socket is an error wrapping ErrNotRegular, returned at once
// instead of an open or read that may never return. Errors do not repeat
// the path.
func OpenRegularFile(path string) (*os.File, error) {
	return openRegular(path)
}

// ReadRegularFile reads the whole file at path, like os.ReadFile, but only
// if it is a regular file (symbolic links followed): a named pipe, device
// or socket is an error wrapping ErrNotRegular instead of a read that may
// never return. Errors do not repeat the path.
func ReadRegularFile(path string) ([]byte, error) {
	return readRegular(path)
}
