package transfer

import (
	"crypto/rand"
	"crypto/sha256"
	"testing"
)

func TestSHA256x16MatchesSHA256(t *testing.T) {
	arena := make([]byte, 4<<20)
	rand.Read(arena)
	x := newSHA256x16()
	for _, sizes := range [][]int{
		{0},
		{1, 55, 56, 63, 64, 65, 119, 120, 127, 128, 129, 1000, 4096, 65536, 100000, 3},
		{200000, 200000, 200000, 200000, 200000, 200000, 200000, 200000, 200000, 200000, 200000, 200000, 200000, 200000, 200000, 200000},
		{200000, 7, 130000, 0, 64},
		{1 << 20, 1 << 20, 1<<20 - 1},
	} {
		var msgs [][]byte
		off := 0
		for i, n := range sizes {
			off += i * 13 // messages at unaligned offsets
			msgs = append(msgs, arena[off:off+n])
			off += n
		}
		sums := make([][sha256.Size]byte, len(msgs))
		x.sum(arena, msgs, sums)
		for i, m := range msgs {
			if sums[i] != sha256.Sum256(m) {
				t.Fatalf("sizes %v: message %d (%d bytes): digest differs from crypto/sha256", sizes, i, len(m))
			}
		}
	}
}

func BenchmarkSHA256x16(b *testing.B) {
	arena := make([]byte, 16<<20)
	rand.Read(arena)
	var msgs [][]byte
	for i := range 16 {
		msgs = append(msgs, arena[i<<20:(i+1)<<20])
	}
	sums := make([][sha256.Size]byte, 16)
	x := newSHA256x16()
	b.SetBytes(16 << 20)
	for b.Loop() {
		x.sum(arena, msgs, sums)
	}
}

func BenchmarkSHA256SHANI(b *testing.B) {
	arena := make([]byte, 16<<20)
	rand.Read(arena)
	b.SetBytes(16 << 20)
	for b.Loop() {
		for i := range 16 {
			sha256.Sum256(arena[i<<20 : (i+1)<<20])
		}
	}
}

// FuzzSHA256x16 checks the side-by-side digests against crypto/sha256 for
// messages of any sizes and places in the arena.
func FuzzSHA256x16(f *testing.F) {
	f.Add([]byte{1, 64, 65, 0, 200, 7})
	f.Fuzz(func(t *testing.T, sizes []byte) {
		arena := make([]byte, 1<<20)
		for i := range arena {
			arena[i] = byte(i*131 + i>>9)
		}
		var msgs [][]byte
		off := 0
		for i, b := range sizes {
			if i == 16 {
				break
			}
			n := int(b) * (1 + i*37)
			if off+n > len(arena) {
				break
			}
			msgs = append(msgs, arena[off:off+n])
			off += n + i
		}
		sums := make([][sha256.Size]byte, len(msgs))
		newSHA256x16().sum(arena, msgs, sums)
		for i, m := range msgs {
			if sums[i] != sha256.Sum256(m) {
				t.Fatalf("message %d (%d bytes): digest differs from crypto/sha256", i, len(m))
			}
		}
	})
}
