//go:build linux

package store

import (
	"os"

	"golang.org/x/sys/unix"
)

// startWriteback asks the kernel to start writing f's data to disk now,
// without waiting, so that the Sync that makes a transfer durable finds
// most of it written already instead of starting all the I/O at the end.
// It does nothing on file systems without writeback (tmpfs).
func startWriteback(f *os.File) {
	_ = unix.SyncFileRange(int(f.Fd()), 0, 0, unix.SYNC_FILE_RANGE_WRITE)
}
