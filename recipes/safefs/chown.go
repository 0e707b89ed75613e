//go:build unix

package safefs

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// Owner is what ChownTree gives a tree to.
type Owner struct {
	UID, GID int
	// LinkedFrom: a non-directory with more than one hard link is changed
	// only when it belongs to this user; -1 never. A hard link planted in
	// the tree may be another name of a file outside it, which must not
	// change hands.
	LinkedFrom int
	// ClearMode is the permission bits removed from every directory and
	// regular file changed (e.g. 0o022 plus setuid and setgid, when a tree
	// is taken back from its writer).
	ClearMode uint32
}

// ChownTree gives root and everything below it to o, never following a
// symbolic link (links themselves change owner). Multiply-linked files are
// left alone per o.LinkedFrom. It stops at the first error.
func ChownTree(root string, o Owner) error {
	d, err := OpenDir(root)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := chownDir(d, o); err != nil {
		return err
	}
	return d.Walk(func(e *Entry) error {
		if e.IsDir() {
			return chownDir(e.sub, o)
		}
		return chownEntry(e, o)
	})
}

func chownDir(d *Dir, o Owner) error {
	if err := unix.Fchown(d.fd, o.UID, o.GID); err != nil {
		return &os.PathError{Op: "fchown", Path: d.path, Err: err}
	}
	if o.ClearMode != 0 {
		st, err := d.Stat()
		if err != nil {
			return err
		}
		if m := uint32(st.Mode) & 0o7777; m&o.ClearMode != 0 {
			if err := unix.Fchmod(d.fd, m&^o.ClearMode); err != nil {
				return &os.PathError{Op: "fchmod", Path: d.path, Err: err}
			}
		}
	}
	return nil
}

// chownEntry changes a non-directory entry through a descriptor of the
// very inode (see chownAt), refusing one that is no longer what the walk
// saw.
func chownEntry(e *Entry, o Owner) error {
	err := chownAt(e.Parent, e.Name, e.Stat, o)
	if errors.Is(err, unix.ENOENT) {
		return nil // gone meanwhile
	}
	return err
}

func skipLinked(st unix.Stat_t, o Owner) bool {
	return st.Mode&unix.S_IFMT != unix.S_IFDIR && st.Nlink > 1 && (o.LinkedFrom < 0 || int(st.Uid) != o.LinkedFrom)
}

func changedErr(d *Dir, name string) error { return fmt.Errorf("%w: %s", ErrChanged, d.child(name)) }
