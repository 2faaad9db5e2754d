// This file holds the project's one atomic file writer, WriteFileAtomic. It
// uses the standard library only, so that any package (graphs among them)
// can share it without new dependencies.

package augment

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
)

// WriteFileAtomic writes data to path through a temporary file in the same
// folder, an fsync and a rename, then fsyncs the folder, so readers see the
// old or the new file, never a partial one, even after a crash. The
// temporary file is named ".BASE.tmp-*" after path's base name.
func WriteFileAtomic(path string, data []byte) error {
	return WriteFileAtomicTemp(path, "."+filepath.Base(path)+".tmp-*", data)
}

// WriteFileAtomicTemp is WriteFileAtomic with the temporary file's name
// pattern given (as for os.CreateTemp), for callers that recognise their
// own leftover temporaries by name, such as checkpoint pruning.
func WriteFileAtomicTemp(path, tmpPattern string, data []byte) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, tmpPattern)
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // fails harmlessly after the rename
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	return SyncPath(dir)
}

// SyncPath fsyncs a file or a folder (a folder's fsync makes a rename or a
// file created in it durable). File systems that cannot fsync a folder
// report EINVAL; that is not an error here.
func SyncPath(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	err = f.Sync()
	if errors.Is(err, syscall.EINVAL) {
		err = nil
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
