//go:build !amd64 || purego

package transfer

const haveX16 = false

func blockX16(*[8][16]uint32, *byte, *[16]uint32, int) { panic("unreachable") }
