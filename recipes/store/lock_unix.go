//go:build unix

package store

import (
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// lockDir opens dir/lock and holds a shared lock on it for as long as the
// store is open (until the file is closed, or the process ends). It calls
// clean first when no other store has the directory open (an exclusive lock
// could be taken): only then are the files in tmp/ leftovers of writers
// that crashed, and not writes in progress of another process or store.
func lockDir(dir string, clean func()) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	fd := int(f.Fd())
	if unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB) == nil {
		clean()
	}
	if err := unix.Flock(fd, unix.LOCK_SH); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}
