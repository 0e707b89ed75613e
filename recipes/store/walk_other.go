//go:build !unix

package store

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// walkTree calls fn for every entry below dir. Without directory
// descriptors on this platform, a regular file is opened by path and
// stored only if it is the file the walk saw.
func walkTree(dir string, fn func(treeItem) error) error {
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil || rel == "." {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		return fn(treeItem{rel: rel, mode: info.Mode(),
			readlink: func() (string, error) { return os.Readlink(p) },
			open: func() (*os.File, error) {
				f, err := os.Open(p)
				if err != nil {
					return nil, err
				}
				if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() || !os.SameFile(fi, info) {
					f.Close()
					return nil, fmt.Errorf("store: %s changed while it was being stored", rel)
				}
				return f, nil
			}})
	})
}
