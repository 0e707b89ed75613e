//go:build unix

package safefs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"golang.org/x/sys/unix"
)

// Entry is one entry of a walked tree, valid during the callback.
type Entry struct {
	// Path is slash-separated, relative to the walk's root.
	Path string
	// Name is the entry's name in its directory.
	Name string
	// Parent is the open directory holding the entry.
	Parent *Dir
	// Stat describes the entry, not following a symbolic link; for a
	// directory, the directory the walk opened (and descends into).
	Stat unix.Stat_t
	sub  *Dir
}

// IsDir reports whether the entry is a directory.
func (e *Entry) IsDir() bool { return e.Stat.Mode&unix.S_IFMT == unix.S_IFDIR }

// IsRegular reports whether the entry is a regular file.
func (e *Entry) IsRegular() bool { return e.Stat.Mode&unix.S_IFMT == unix.S_IFREG }

// IsSymlink reports whether the entry is a symbolic link.
func (e *Entry) IsSymlink() bool { return e.Stat.Mode&unix.S_IFMT == unix.S_IFLNK }

// Perm returns the entry's permission bits.
func (e *Entry) Perm() fs.FileMode { return fs.FileMode(e.Stat.Mode & 0o777) }

// Dir returns a directory entry's open directory (nil for other entries).
func (e *Entry) Dir() *Dir { return e.sub }

// Open opens a regular file entry for reading: the very file the walk saw
// (ErrChanged if it was replaced since), never through a symbolic link.
func (e *Entry) Open() (*os.File, error) {
	if !e.IsRegular() {
		return nil, fmt.Errorf("%w: %s", ErrNotRegular, e.Parent.child(e.Name))
	}
	return e.Parent.openRegular(e.Name, &e.Stat)
}

// Readlink returns a symbolic link entry's target.
func (e *Entry) Readlink() (string, error) {
	buf := make([]byte, 256)
	for {
		n, err := unix.Readlinkat(e.Parent.fd, e.Name, buf)
		if err != nil {
			if errors.Is(err, unix.EINVAL) {
				return "", fmt.Errorf("%w: %s", ErrChanged, e.Parent.child(e.Name))
			}
			return "", &os.PathError{Op: "readlink", Path: e.Parent.child(e.Name), Err: err}
		}
		if n < len(buf) {
			return string(buf[:n]), nil
		}
		if len(buf) >= 1<<16 {
			return "", &os.PathError{Op: "readlink", Path: e.Parent.child(e.Name), Err: unix.ENAMETOOLONG}
		}
		buf = make([]byte, 2*len(buf))
	}
}

// Walk calls fn for every entry below the directory root (root itself
// excluded), a directory before its content. The root's last component
// must not be a symbolic link. An entry that vanishes during the walk is
// skipped; a directory replaced by something else is reported as what it
// became when the walk reaches it, or fails the walk with ErrSymlink if
// it is replaced between the look and the open. fn returning SkipDir for
// a directory skips its content; any other error ends the walk.
func Walk(root string, fn func(e *Entry) error) error {
	d, err := OpenDir(root)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Walk(fn)
}

// Walk is the package's Walk below d.
func (d *Dir) Walk(fn func(e *Entry) error) error { return walk(d, "", 0, fn) }

func walk(d *Dir, prefix string, depth int, fn func(e *Entry) error) error {
	if depth >= MaxDepth {
		return fmt.Errorf("%w: %s", ErrTooDeep, d.path)
	}
	return d.each(func(name string) error {
		e := &Entry{Path: name, Name: name, Parent: d}
		if prefix != "" {
			e.Path = prefix + "/" + name
		}
		if err := unix.Fstatat(d.fd, name, &e.Stat, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			if errors.Is(err, unix.ENOENT) {
				return nil
			}
			return &os.PathError{Op: "lstat", Path: d.child(name), Err: err}
		}
		if !e.IsDir() {
			if err := fn(e); err != nil && err != SkipDir {
				return err
			}
			return nil
		}
		sub, err := d.OpenDir(name)
		if err != nil {
			if errors.Is(err, unix.ENOENT) {
				return nil
			}
			return err
		}
		defer sub.Close()
		if err := unix.Fstat(sub.fd, &e.Stat); err != nil {
			return &os.PathError{Op: "fstat", Path: sub.path, Err: err}
		}
		e.sub = sub
		switch err := fn(e); {
		case err == SkipDir:
			return nil
		case err != nil:
			return err
		}
		return walk(sub, e.Path, depth+1, fn)
	})
}

// DiskUsage returns the space allocated to root and everything below it
// (a file with several links counted once). What cannot be read is left
// out.
func DiskUsage(root string) int64 {
	d, err := OpenDir(root)
	if err != nil {
		return 0
	}
	defer d.Close()
	var total int64
	if st, err := d.Stat(); err == nil {
		total += st.Blocks * 512
	}
	seen := map[[2]uint64]bool{}
	_ = d.Walk(func(e *Entry) error {
		if e.Stat.Nlink > 1 && !e.IsDir() {
			k := [2]uint64{uint64(e.Stat.Dev), uint64(e.Stat.Ino)}
			if seen[k] {
				return nil
			}
			seen[k] = true
		}
		total += e.Stat.Blocks * 512
		return nil
	})
	return total
}
