package safefs

import (
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// chownAt opens name in d with O_PATH|O_NOFOLLOW (a symbolic link, a FIFO
// or a device is opened as itself, without side effects), checks it is the
// inode the walk saw, and changes it through that descriptor.
func chownAt(d *Dir, name string, seen unix.Stat_t, o Owner) error {
	fd, err := unix.Openat(d.fd, name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: d.child(name), Err: err}
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return &os.PathError{Op: "fstat", Path: d.child(name), Err: err}
	}
	if st.Dev != seen.Dev || st.Ino != seen.Ino {
		return changedErr(d, name)
	}
	if skipLinked(st, o) {
		return nil
	}
	if err := unix.Fchownat(fd, "", o.UID, o.GID, unix.AT_EMPTY_PATH|unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return &os.PathError{Op: "fchownat", Path: d.child(name), Err: err}
	}
	if o.ClearMode != 0 && st.Mode&unix.S_IFMT == unix.S_IFREG {
		if m := uint32(st.Mode) & 0o7777; m&o.ClearMode != 0 {
			// fchmod refuses O_PATH descriptors; their /proc link is the
			// same inode.
			if err := unix.Chmod("/proc/self/fd/"+strconv.Itoa(fd), m&^o.ClearMode); err != nil {
				return &os.PathError{Op: "chmod", Path: d.child(name), Err: err}
			}
		}
	}
	return nil
}

// openBeneath resolves rel below d in one openat2 call that refuses every
// symbolic link and any escape; ok is false when the kernel lacks openat2.
func openBeneath(d *Dir, rel string) (*Dir, error, bool) {
	how := unix.OpenHow{
		Flags:   unix.O_RDONLY | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS,
	}
	fd, err := unix.Openat2(d.fd, rel, &how)
	if err == unix.ENOSYS || err == unix.EPERM { // no openat2, or a seccomp filter refusing it
		return nil, nil, false
	}
	if err != nil {
		return nil, openErr(d.child(rel), err), true
	}
	return &Dir{fd: fd, path: d.child(rel)}, nil, true
}
