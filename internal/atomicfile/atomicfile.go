// Package atomicfile is the project's one way of writing files that must
// survive a crash: whole-file replacement through a temporary file, a new
// file written and synced, an appended line synced, and the fsync of a file
// or a folder. It uses the standard library only, so that every package —
// run folders, importers, the report — shares it without new dependencies.
package atomicfile

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
)

// Mode is the permission of the files written here: that of os.WriteFile's
// usual 0o644 (os.CreateTemp alone would leave 0o600).
const Mode = 0o644

// Options adjusts WriteFileWith.
type Options struct {
	// TempPattern names the temporary file (as for os.CreateTemp), for
	// callers that recognise their own leftovers by name; default
	// ".BASE.tmp-*".
	TempPattern string
	// BeforeRename, when set, is called once the temporary file is
	// complete and synced, just before the rename: a test hook that kills
	// the process there (see internal/crashpoint).
	BeforeRename func()
}

// WriteFile writes data to path through a temporary file in the same
// folder, an fsync and a rename, then fsyncs the folder, so that readers see
// the old or the new file, never a partial one, even after a crash.
func WriteFile(path string, data []byte) error { return WriteFileWith(path, data, Options{}) }

// WriteFileWith is WriteFile with options.
func WriteFileWith(path string, data []byte, o Options) error {
	dir := filepath.Dir(path)
	pattern := o.TempPattern
	if pattern == "" {
		pattern = "." + filepath.Base(path) + ".tmp-*"
	}
	tmp, err := os.CreateTemp(dir, pattern)
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // fails harmlessly after the rename
	if err := writeAndSync(tmp, data); err != nil {
		return err
	}
	if err := os.Chmod(tmp.Name(), Mode); err != nil {
		return err
	}
	if o.BeforeRename != nil {
		o.BeforeRename()
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	return Sync(dir)
}

// Create writes a new file (replacing any file there) and fsyncs it. It is
// for files inside a folder that is itself made durable afterwards, such as
// a checkpoint or a SavedModel being assembled.
func Create(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, Mode)
	if err != nil {
		return err
	}
	return writeAndSync(f, data)
}

// Append adds data to path (creating it) in one write and fsyncs it, so a
// crash leaves whole lines.
func Append(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, Mode)
	if err != nil {
		return err
	}
	return writeAndSync(f, data)
}

// writeAndSync writes data to f, fsyncs and closes it.
func writeAndSync(f *os.File, data []byte) error {
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// Sync fsyncs a file or a folder (a folder's fsync makes a rename or a file
// created in it durable). File systems that cannot fsync a folder report
// EINVAL; that is not an error here.
func Sync(path string) error {
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
