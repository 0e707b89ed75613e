//go:build unix

package store

import (
	"os"
	"runtime/debug"
	"testing"
)

var sink byte // keeps the compiler from dropping the read

// A block file truncated behind the store's back while it is mapped
// faults on access; under SetPanicOnFault (as the transfer provider reads
// mappings) that is a panic the reader recovers from, not a crash.
func TestMappedBlockTruncatedFaultsRecoverably(t *testing.T) {
	s := newStore(t)
	c, err := s.PutRaw(randBytes(ChunkSize))
	if err != nil {
		t.Fatal(err)
	}
	m, release, err := s.MapBlock(c)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	if err := os.Truncate(s.path(c), 0); err != nil {
		t.Fatal(err)
	}
	faulted := func() (faulted bool) {
		defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
		defer func() { faulted = recover() != nil }()
		sink = m[len(m)-1]
		return false
	}()
	if !faulted {
		t.Fatal("reading past the end of a truncated mapping did not fault")
	}
}
