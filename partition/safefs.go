package partition

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// The node runs as root and writes into directories that instances (other
// users) control. An instance could plant symlinks there to make the node
// write, truncate or chown files elsewhere. Every such write goes through
// these helpers: no symlink is followed below the partition's directory.
// Instances' processes are stopped whenever the node writes there (before
// a start), so the checks are not raced.

// errSymlink means a path below a partition is or goes through a symlink.
var errSymlink = fmt.Errorf("partition: refusing to follow a symlink in a partition")

// checkNoSymlinks fails when any component of path below base (base
// excluded, path included if it exists) is a symlink or not a directory
// where one is needed.
func checkNoSymlinks(base, path string) error {
	rel, err := filepath.Rel(base, path)
	if err != nil || !filepath.IsLocal(rel) {
		return fmt.Errorf("partition: %s is not below %s", path, base)
	}
	cur := base
	parts := strings.Split(rel, string(filepath.Separator))
	for i, p := range parts {
		cur = filepath.Join(cur, p)
		fi, err := os.Lstat(cur)
		if os.IsNotExist(err) {
			return nil
		}
		if err != nil {
			return err
		}
		if fi.Mode()&os.ModeSymlink != 0 {
			return fmt.Errorf("%w: %s", errSymlink, cur)
		}
		if i < len(parts)-1 && !fi.IsDir() {
			return fmt.Errorf("partition: %s is not a directory", cur)
		}
	}
	return nil
}

// mkdirSafe creates dir (and parents) below base without following
// symlinks, and gives the created or existing dir to acct.
func mkdirSafe(base, dir string, acct account) error {
	if err := checkNoSymlinks(base, dir); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("partition: %w", err)
	}
	if err := checkNoSymlinks(base, dir); err != nil {
		return err
	}
	if acct.set() {
		if err := os.Lchown(dir, acct.UID, acct.GID); err != nil {
			return fmt.Errorf("partition: %w", err)
		}
	}
	return nil
}

// openDirNoFollow opens dir, refusing a symlink as its last component. The
// components above it must not be writable by instances (a partition's
// log directory: partitions/N belongs to root's partitions directory).
// Files opened relative to the descriptor stay in that directory even if
// the instance swaps the path for a symlink meanwhile.
func openDirNoFollow(dir string) (int, error) {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR) {
			return -1, fmt.Errorf("%w: %s", errSymlink, dir)
		}
		return -1, &os.PathError{Op: "open", Path: dir, Err: err}
	}
	return fd, nil
}

// openRegularAt opens name in the directory dfd without following a
// symlink and without blocking (an instance may plant a FIFO), and only if
// it is a regular file.
func openRegularAt(dfd int, name string, flag int, perm uint32) (*os.File, error) {
	fd, err := unix.Openat(dfd, name, flag|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, perm)
	if err != nil {
		if errors.Is(err, unix.ELOOP) {
			return nil, fmt.Errorf("%w: %s", errSymlink, name)
		}
		return nil, &os.PathError{Op: "open", Path: name, Err: err}
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, &os.PathError{Op: "fstat", Path: name, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		unix.Close(fd)
		return nil, fmt.Errorf("partition: %s is not a regular file", name)
	}
	if err := unix.SetNonblock(fd, false); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return os.NewFile(uintptr(fd), name), nil
}

// openLogFile opens (creating it) a process's log for appending: no
// symlink followed below base, race-free for the log directory, which the
// instance owns and can change while its other processes run.
func openLogFile(base, path string) (*os.File, error) {
	dir := filepath.Dir(path)
	if err := checkNoSymlinks(base, dir); err != nil {
		return nil, err
	}
	dfd, err := openDirNoFollow(dir)
	if err != nil {
		return nil, err
	}
	defer unix.Close(dfd)
	f, err := openRegularAt(dfd, filepath.Base(path), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return nil, err
	}
	return f, nil
}
