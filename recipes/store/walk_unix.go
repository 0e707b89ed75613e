//go:build unix

package store

import (
	"io/fs"
	"os"

	"github.com/weftgrid/weft/recipes/safefs"
)

// walkTree calls fn for every entry below dir, walked by safefs: from
// directory descriptors, never following a symbolic link, each regular
// file opened only if it is still the inode the walk saw.
func walkTree(dir string, fn func(treeItem) error) error {
	return safefs.Walk(dir, func(e *safefs.Entry) error {
		mode := e.Perm()
		switch {
		case e.IsDir():
			mode |= fs.ModeDir
		case e.IsSymlink():
			mode |= fs.ModeSymlink
		case e.IsRegular():
		default:
			mode |= fs.ModeIrregular
		}
		return fn(treeItem{rel: e.Path, mode: mode, readlink: e.Readlink,
			open: func() (*os.File, error) { return e.Open() }})
	})
}
