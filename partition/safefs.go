package partition

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
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

// openNoFollow opens path with flag|O_NOFOLLOW after checking that no
// component below base is a symlink.
func openNoFollow(base, path string, flag int, perm os.FileMode) (*os.File, error) {
	if err := checkNoSymlinks(base, filepath.Dir(path)); err != nil {
		return nil, err
	}
	return os.OpenFile(path, flag|syscall.O_NOFOLLOW, perm)
}
