// Package atomicfile replaces files atomically: the content is written to
// a temporary file in the same directory (named "." + base + ".tmp-*", so
// that directory listings can skip it), synced, and renamed over the
// destination. A reader sees the old file or the new one, never a part;
// after a crash the destination holds one of the two. Files are created
// with mode 0600 (os.CreateTemp's): weft's state is its own.
//
// Usage:
//
//	err := atomicfile.WriteFile(path, data)
//	err := atomicfile.Write(path, func(w io.Writer) error { return enc.Encode(v) })
//	err := atomicfile.SyncDir(filepath.Dir(path)) // when the rename itself must be durable now
//
// Concurrency: concurrent writers of one path each replace it whole; the
// last rename wins.
package atomicfile

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
)

// WriteFile replaces path with data.
func WriteFile(path string, data []byte) error {
	return Write(path, func(w io.Writer) error {
		_, err := io.Copy(w, bytes.NewReader(data))
		return err
	})
}

// Write replaces path with what fn writes. Nothing replaces path when fn
// fails; the temporary file is removed.
func Write(path string, fn func(io.Writer) error) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = os.Remove(f.Name())
		}
	}()
	err = fn(f)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

// SyncDir makes the renames in dir durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
