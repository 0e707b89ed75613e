//go:build unix && !linux

package safefs

import (
	"os"

	"golang.org/x/sys/unix"
)

// chownAt changes name in d without following a symbolic link (no O_PATH
// here: a hard link swapped in between the look and the change is not
// detected).
func chownAt(d *Dir, name string, seen unix.Stat_t, o Owner) error {
	var st unix.Stat_t
	if err := unix.Fstatat(d.fd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return &os.PathError{Op: "lstat", Path: d.child(name), Err: err}
	}
	if st.Dev != seen.Dev || st.Ino != seen.Ino {
		return changedErr(d, name)
	}
	if skipLinked(st, o) {
		return nil
	}
	if err := unix.Fchownat(d.fd, name, o.UID, o.GID, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return &os.PathError{Op: "fchownat", Path: d.child(name), Err: err}
	}
	if o.ClearMode != 0 && st.Mode&unix.S_IFMT == unix.S_IFREG {
		if m := uint32(st.Mode) & 0o7777; m&o.ClearMode != 0 {
			_ = unix.Fchmodat(d.fd, name, m&^o.ClearMode, unix.AT_SYMLINK_NOFOLLOW)
		}
	}
	return nil
}

func openBeneath(d *Dir, rel string) (*Dir, error, bool) { return nil, nil, false }
