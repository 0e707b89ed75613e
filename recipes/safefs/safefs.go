//go:build unix

package safefs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"strings"

	"golang.org/x/sys/unix"
)

// Errors returned by the package; they wrap the path concerned.
var (
	// ErrSymlink means a symbolic link was found where a directory or a
	// regular file was to be opened: it is never followed.
	ErrSymlink = errors.New("safefs: refusing to follow a symbolic link")
	// ErrNotRegular means a regular file was to be opened and something
	// else (a FIFO, a device, a directory) is there.
	ErrNotRegular = errors.New("safefs: not a regular file")
	// ErrChanged means an entry was replaced between the walk's look at it
	// and its use (by whoever owns the tree).
	ErrChanged = errors.New("safefs: changed while it was being read")
	// ErrTooDeep means a tree is nested deeper than MaxDepth.
	ErrTooDeep = errors.New("safefs: tree nested too deep")
	// ErrBadName means a name given to a Dir method is not one component.
	ErrBadName = errors.New("safefs: not a single path component")
)

// SkipDir, returned by a Walk callback for a directory, skips its content.
var SkipDir = fs.SkipDir

// MaxDepth is how deep a tree may nest: the walk holds one descriptor per
// level.
const MaxDepth = 512

// Dir is an open directory. Everything below it is reached through its
// descriptor, one component at a time, never following a symbolic link.
type Dir struct {
	fd   int
	path string // for messages
}

// OpenDir opens the directory at p; its last component must not be a
// symbolic link (ErrSymlink). The components above it are trusted.
func OpenDir(p string) (*Dir, error) {
	fd, err := unix.Open(p, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, openDirErr(unix.AT_FDCWD, p, p, err)
	}
	return &Dir{fd: fd, path: p}, nil
}

// openDirErr explains a failed directory open: O_NOFOLLOW|O_DIRECTORY on
// a symbolic link fails with ENOTDIR (or ELOOP).
func openDirErr(dfd int, name, p string, err error) error {
	if errors.Is(err, unix.ENOTDIR) {
		var st unix.Stat_t
		if unix.Fstatat(dfd, name, &st, unix.AT_SYMLINK_NOFOLLOW) == nil && st.Mode&unix.S_IFMT == unix.S_IFLNK {
			err = unix.ELOOP
		}
	}
	return openErr(p, err)
}

// openTrusted opens a directory whose every component is trusted (the
// parent of a tree), following symbolic links.
func openTrusted(p string) (*Dir, error) {
	fd, err := unix.Open(p, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: p, Err: err}
	}
	return &Dir{fd: fd, path: p}, nil
}

func openErr(p string, err error) error {
	if errors.Is(err, unix.ELOOP) {
		return fmt.Errorf("%w: %s", ErrSymlink, p)
	}
	return &os.PathError{Op: "open", Path: p, Err: err}
}

// Close closes the directory's descriptor.
func (d *Dir) Close() error {
	if d == nil || d.fd < 0 {
		return nil
	}
	err := unix.Close(d.fd)
	d.fd = -1
	return err
}

// Fd returns the directory's descriptor (owned by d).
func (d *Dir) Fd() int { return d.fd }

// Path returns the path d was opened at, for messages.
func (d *Dir) Path() string { return d.path }

func (d *Dir) child(name string) string { return d.path + "/" + name }

func checkName(name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsRune(name, '/') {
		return fmt.Errorf("%w: %q", ErrBadName, name)
	}
	return nil
}

// OpenDir opens the directory name in d; a symbolic link is ErrSymlink.
func (d *Dir) OpenDir(name string) (*Dir, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	fd, err := unix.Openat(d.fd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, openDirErr(d.fd, name, d.child(name), err)
	}
	return &Dir{fd: fd, path: d.child(name)}, nil
}

// OpenFile opens the regular file name in d for reading, without
// following a symbolic link and without blocking on a FIFO.
func (d *Dir) OpenFile(name string) (*os.File, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	return d.openRegular(name, nil)
}

// openRegular opens name read-only; when want is set, only if it is still
// that inode.
func (d *Dir) openRegular(name string, want *unix.Stat_t) (*os.File, error) {
	p := d.child(name)
	fd, err := unix.Openat(d.fd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, openErr(p, err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, &os.PathError{Op: "fstat", Path: p, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		unix.Close(fd)
		return nil, fmt.Errorf("%w: %s", ErrNotRegular, p)
	}
	if want != nil && (st.Dev != want.Dev || st.Ino != want.Ino) {
		unix.Close(fd)
		return nil, fmt.Errorf("%w: %s", ErrChanged, p)
	}
	if err := unix.SetNonblock(fd, false); err != nil {
		unix.Close(fd)
		return nil, &os.PathError{Op: "fcntl", Path: p, Err: err}
	}
	return os.NewFile(uintptr(fd), p), nil
}

// Lstat returns what name in d is, not following a symbolic link.
func (d *Dir) Lstat(name string) (unix.Stat_t, error) {
	var st unix.Stat_t
	if err := checkName(name); err != nil {
		return st, err
	}
	if err := unix.Fstatat(d.fd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return st, &os.PathError{Op: "lstat", Path: d.child(name), Err: err}
	}
	return st, nil
}

// Stat returns what d itself is.
func (d *Dir) Stat() (unix.Stat_t, error) {
	var st unix.Stat_t
	if err := unix.Fstat(d.fd, &st); err != nil {
		return st, &os.PathError{Op: "fstat", Path: d.path, Err: err}
	}
	return st, nil
}

// OpenBeneath opens the directory rel (slash-separated, relative) below d,
// refusing any symbolic link on the way and any ".." that would climb out
// of d.
func (d *Dir) OpenBeneath(rel string) (*Dir, error) {
	rel = path.Clean(rel)
	if rel == "." {
		fd, err := unix.Openat(d.fd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return nil, openErr(d.path, err)
		}
		return &Dir{fd: fd, path: d.path}, nil
	}
	if !fs.ValidPath(rel) {
		return nil, fmt.Errorf("%w: %q leaves its directory", ErrBadName, rel)
	}
	if sub, err, ok := openBeneath(d, rel); ok {
		return sub, err
	}
	cur := d
	for _, c := range strings.Split(rel, "/") {
		next, err := cur.OpenDir(c)
		if cur != d {
			cur.Close()
		}
		if err != nil {
			return nil, err
		}
		cur = next
	}
	return cur, nil
}

// each calls f with the names in d (not "." and ".."), reading the
// directory from its current offset in batches.
func (d *Dir) each(f func(name string) error) error {
	buf := make([]byte, 32<<10)
	var names []string
	for {
		n, err := unix.ReadDirent(d.fd, buf)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return &os.PathError{Op: "readdirent", Path: d.path, Err: err}
		}
		if n <= 0 {
			return nil
		}
		_, _, names = unix.ParseDirent(buf[:n], -1, names[:0])
		for _, name := range names {
			if err := f(name); err != nil {
				return err
			}
		}
	}
}

// rewind makes each read d from its beginning again.
func (d *Dir) rewind() error {
	_, err := unix.Seek(d.fd, 0, 0)
	return err
}
