//go:build !unix

package store

import "os"

// lockDir empties tmp/ (without file locks on this platform, a store
// cannot tell whether another process has it open).
func lockDir(dir string, clean func()) (*os.File, error) {
	clean()
	return nil, nil
}
