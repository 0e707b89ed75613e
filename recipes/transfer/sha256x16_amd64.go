//go:build amd64 && !purego

package transfer

import "golang.org/x/sys/cpu"

//go:noescape
func blockX16(state *[8][16]uint32, base *byte, offs *[16]uint32, nblocks int)

// haveX16 reports whether this CPU (and OS) run blockX16: AVX-512 F and BW
// (byte shuffles of 512-bit registers).
var haveX16 = cpu.X86.HasAVX512F && cpu.X86.HasAVX512BW
