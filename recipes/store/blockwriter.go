package store

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/ipfs/go-cid"
)

// BlockWriter receives the data of one block as it streams in, into a
// temporary file under tmp/: nothing of it is part of the store until
// Commit, which the caller may only call once it has checked every byte
// against the block's CID (a transfer hashes the data as it arrives). Abort
// drops it. A crash in between leaves only a file in tmp/, which Open
// removes, so a block in blocks/ is always one whose hash was checked.
type BlockWriter struct {
	s    *Store
	c    cid.Cid
	dst  string
	f    *os.File // nil when the block is already stored: data is discarded
	n    int64
	done bool
}

// NewBlockWriter starts receiving block c. When c is already stored, the
// writer discards what it is given and Commit does nothing.
func (s *Store) NewBlockWriter(c cid.Cid) (*BlockWriter, error) {
	if err := CheckCID(c); err != nil {
		return nil, err
	}
	if s.isClosed() {
		return nil, ErrClosed
	}
	w := &BlockWriter{s: s, c: c, dst: s.path(c)}
	if _, err := os.Stat(w.dst); err == nil {
		return w, nil
	}
	f, err := os.CreateTemp(filepath.Join(s.dir, "tmp"), "blk-*")
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	w.f = f
	return w, nil
}

// Write appends p to the block's data.
func (w *BlockWriter) Write(p []byte) (int, error) {
	if w.done {
		return 0, os.ErrClosed
	}
	if w.n += int64(len(p)); w.n > MaxBlockSize {
		return 0, fmt.Errorf("%w: %s", ErrTooLarge, w.c)
	}
	if w.f == nil {
		return len(p), nil
	}
	n, err := w.f.Write(p)
	if err != nil {
		err = fmt.Errorf("store: write %s: %w", w.c, err)
	}
	return n, err
}

// Commit makes the block part of the store (durable after the next Sync).
// The caller must have checked the data against the CID.
func (w *BlockWriter) Commit() error {
	if w.done {
		return os.ErrClosed
	}
	w.done = true
	if w.f == nil {
		return nil
	}
	f, tmp := w.f, w.f.Name()
	startWriteback(f)
	err := f.Close()
	if err == nil {
		err = os.MkdirAll(filepath.Dir(w.dst), 0o700)
	}
	if err == nil {
		err = os.Rename(tmp, w.dst)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("store: write %s: %w", w.c, err)
	}
	w.s.mu.Lock()
	w.s.pending[w.dst] = true
	w.s.mu.Unlock()
	return nil
}

// Abort drops what was written (nothing of it reaches the store). It does
// nothing after Commit or a previous Abort.
func (w *BlockWriter) Abort() {
	if w.done {
		return
	}
	w.done = true
	if w.f != nil {
		_ = w.f.Close()
		_ = os.Remove(w.f.Name())
	}
}
