//go:build unix

package store

import (
	"errors"
	"fmt"
	"os"
	"syscall"

	"github.com/ipfs/go-cid"
)

// MapBlock maps block c read-only into memory, without checking its hash
// (for serving: the receiver checks it), so that a provider hands the page
// cache straight to the stream instead of copying every byte through a
// buffer first. release unmaps it; data must not be used after. Blocks are
// never changed in place (writes go through tmp/ and a rename), so the
// mapping stays valid even if the block is removed meanwhile; a caller that
// must survive a file truncated behind the store's back reads the data
// under debug.SetPanicOnFault.
func (s *Store) MapBlock(c cid.Cid) (data []byte, release func(), err error) {
	if err := CheckCID(c); err != nil {
		return nil, nil, err
	}
	f, err := os.Open(s.path(c))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil, fmt.Errorf("%w: %s", ErrNotFound, c)
	}
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	if st.Size() > MaxBlockSize {
		return nil, nil, fmt.Errorf("%w: %s", ErrTooLarge, c)
	}
	if st.Size() == 0 {
		return []byte{}, func() {}, nil
	}
	m, err := syscall.Mmap(int(f.Fd()), 0, int(st.Size()), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		// Some file systems cannot map files: read instead.
		b, rerr := s.AppendBlock(nil, c)
		return b, func() {}, rerr
	}
	return m, func() { _ = syscall.Munmap(m) }, nil
}
