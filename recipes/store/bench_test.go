package store

import (
	"crypto/sha256"
	"os"
	"testing"

	"github.com/ipfs/go-cid"

	"github.com/weftgrid/weft/recipes"
)

func benchDir(b *testing.B) string {
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		d, err := os.MkdirTemp("/dev/shm", "weft-bench-")
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { os.RemoveAll(d) })
		return d
	}
	return b.TempDir()
}

// BenchmarkPutBlock stores verified 1 MiB chunks (hash check, temporary
// file, rename), syncing every 64 blocks as a transfer does.
func BenchmarkPutBlock(b *testing.B) {
	s, err := Open(benchDir(b))
	if err != nil {
		b.Fatal(err)
	}
	chunks := make([][]byte, 64)
	cids := make([]cid.Cid, 64)
	for i := range chunks {
		chunks[i] = randBytes(ChunkSize)
		cids[i] = recipes.CIDOf(cid.Raw, chunks[i])
	}
	b.SetBytes(ChunkSize)
	i := 0
	for b.Loop() {
		k := i % 64
		if k == 0 && i > 0 {
			_ = s.Sync()
			b.StopTimer()
			for _, c := range cids {
				os.Remove(s.path(c))
			}
			b.StartTimer()
		}
		if err := s.PutBlock(cids[k], chunks[k]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkSHA256 is the hash alone, for comparison with BenchmarkPutBlock.
func BenchmarkSHA256(b *testing.B) {
	data := randBytes(ChunkSize)
	b.SetBytes(ChunkSize)
	for b.Loop() {
		sha256.Sum256(data)
	}
}
