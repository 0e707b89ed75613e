package transfer

import (
	"crypto/sha256"
	"encoding"
	"encoding/binary"
	"unsafe"
)

// sha256x16 hashes up to 16 messages side by side, one in each 32-bit
// lane of AVX-512 registers: the sha2-256 rounds of 16 messages cost about
// what the SHA extensions take for two or three, so a fetcher verifies its
// chunks with a fraction of the CPU. Every message must lie in arena (the
// lanes load their words with one gather from the arena's start). The
// digests are exactly sha2-256's: the full 64-byte blocks go through the
// lanes, and each message's last partial block and padding through
// crypto/sha256, which continues from the lane's state.
type sha256x16 struct {
	state [8][16]uint32
	offs  [16]uint32
	h     []byte // a marshaled crypto/sha256 state
	d     interface {
		encoding.BinaryUnmarshaler
		Write([]byte) (int, error)
		Sum([]byte) []byte
	}
}

var sha256Init = [8]uint32{0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19}

func newSHA256x16() *sha256x16 {
	x := &sha256x16{}
	x.d = sha256.New().(interface {
		encoding.BinaryUnmarshaler
		Write([]byte) (int, error)
		Sum([]byte) []byte
	})
	return x
}

// sum writes the digest of msgs[i] into sums[i] (len(msgs) ≤ 16).
func (x *sha256x16) sum(arena []byte, msgs [][]byte, sums [][sha256.Size]byte) {
	if len(msgs) > 16 || len(sums) < len(msgs) {
		panic("transfer: sha256x16: too many messages")
	}
	if !haveX16 {
		for i, m := range msgs {
			sums[i] = sha256.Sum256(m)
		}
		return
	}
	base := uintptr(unsafe.Pointer(unsafe.SliceData(arena)))
	var left [16]int // full blocks still to hash per lane
	for l := range 16 {
		for i := range x.state {
			x.state[i][l] = sha256Init[i]
		}
		x.offs[l] = 0
		if l < len(msgs) && len(msgs[l]) > 0 {
			off := uintptr(unsafe.Pointer(unsafe.SliceData(msgs[l]))) - base
			if off > uintptr(len(arena)) || uintptr(len(msgs[l])) > uintptr(len(arena))-off {
				panic("transfer: sha256x16: message outside the arena")
			}
			x.offs[l] = uint32(off)
			left[l] = len(msgs[l]) / 64
		}
	}
	for {
		n, any := 0, -1
		for l := range 16 {
			if left[l] > 0 && (n == 0 || left[l] < n) {
				n, any = left[l], l
			}
		}
		if n == 0 {
			break
		}
		// Lanes with nothing left (or no message) hash blocks of another
		// lane in the meantime; their state is put back afterwards.
		var saved [16][8]uint32
		var savedOff [16]uint32
		for l := range 16 {
			if left[l] == 0 {
				for i := range 8 {
					saved[l][i] = x.state[i][l]
				}
				savedOff[l] = x.offs[l]
				x.offs[l] = x.offs[any]
			}
		}
		blockX16(&x.state, unsafe.SliceData(arena), &x.offs, n)
		for l := range 16 {
			if left[l] == 0 {
				for i := range 8 {
					x.state[i][l] = saved[l][i]
				}
				x.offs[l] = savedOff[l]
			} else {
				left[l] -= n
				x.offs[l] += uint32(64 * n)
			}
		}
	}
	for l, m := range msgs {
		full := len(m) &^ 63
		x.h = append(x.h[:0], "sha\x03"...)
		for i := range 8 {
			x.h = binary.BigEndian.AppendUint32(x.h, x.state[i][l])
		}
		x.h = append(x.h, make([]byte, 64)...)
		x.h = binary.BigEndian.AppendUint64(x.h, uint64(full))
		if err := x.d.UnmarshalBinary(x.h); err != nil {
			panic("transfer: sha256x16: " + err.Error())
		}
		x.d.Write(m[full:])
		x.d.Sum(sums[l][:0])
	}
}
