//go:build unix

package safefs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// RemoveAll deletes p and everything below it, by unlinkat relative to
// open directories, never following a symbolic link (a link is removed,
// not what it points to). p's last component may be anything; the
// components above it are trusted. A missing p is no error.
func RemoveAll(p string) error {
	p = filepath.Clean(p)
	parent, err := openTrusted(filepath.Dir(p))
	if err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil
		}
		return err
	}
	defer parent.Close()
	return parent.RemoveAll(filepath.Base(p))
}

// RemoveAll deletes name in d and, for a directory, everything below it.
func (d *Dir) RemoveAll(name string) error {
	if err := checkName(name); err != nil {
		return err
	}
	r := remover{}
	return r.removeAll(d, name, 0)
}

// remover removes one tree. A directory nested deeper than MaxDepth is
// moved up to the tree's top (renameat between open directories) and
// removed from there, so that no nesting stops a removal.
type remover struct {
	top   *Dir // the tree's top directory, once open
	moved int
}

func (r *remover) removeAll(d *Dir, name string, depth int) error {
	err := unix.Unlinkat(d.fd, name, 0)
	switch {
	case err == nil || errors.Is(err, unix.ENOENT):
		return nil
	case !errors.Is(err, unix.EISDIR) && !errors.Is(err, unix.EPERM):
		return &os.PathError{Op: "unlinkat", Path: d.child(name), Err: err}
	}
	if depth >= MaxDepth && r.top != nil {
		r.moved++
		to := fmt.Sprintf(".safefs-deep-%d", r.moved)
		if err := unix.Renameat(d.fd, name, r.top.fd, to); err != nil {
			return &os.PathError{Op: "renameat", Path: d.child(name), Err: err}
		}
		return nil
	}
	// A directory: empty it, then remove it. Reading a directory while
	// removing its entries may skip some; it is read again until a pass
	// removes nothing.
	for attempt := 0; ; attempt++ {
		sub, err := d.OpenDir(name)
		if err != nil {
			if errors.Is(err, unix.ENOENT) {
				return nil
			}
			if errors.Is(err, ErrSymlink) || errors.Is(err, unix.ENOTDIR) {
				// Replaced by a link or a file meanwhile: remove that.
				if err := unix.Unlinkat(d.fd, name, 0); err != nil && !errors.Is(err, unix.ENOENT) {
					return &os.PathError{Op: "unlinkat", Path: d.child(name), Err: err}
				}
				return nil
			}
			return err
		}
		if r.top == nil {
			r.top = sub
		}
		var firstErr error
		for {
			removed := 0
			err := sub.each(func(n string) error {
				if err := r.removeAll(sub, n, depth+1); err != nil {
					if firstErr == nil {
						firstErr = err
					}
					return nil
				}
				removed++
				return nil
			})
			if err != nil && firstErr == nil {
				firstErr = err
			}
			if removed == 0 || firstErr != nil || sub.rewind() != nil {
				break
			}
		}
		if r.top == sub {
			r.top = nil
		}
		sub.Close()
		if firstErr != nil {
			return firstErr
		}
		err = unix.Unlinkat(d.fd, name, unix.AT_REMOVEDIR)
		switch {
		case err == nil || errors.Is(err, unix.ENOENT):
			return nil
		case errors.Is(err, unix.ENOTEMPTY) && attempt < 4:
			continue // filled again meanwhile
		}
		return &os.PathError{Op: "unlinkat", Path: d.child(name), Err: err}
	}
}
