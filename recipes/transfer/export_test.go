package transfer

// SetBatchHash turns checking raw chunks in batches (sha256x16) on or off
// for the fetchers of this process, so that tests cover both paths on any
// CPU; restore puts the previous setting back.
func SetBatchHash(on bool) (restore func()) {
	old := batchHash
	batchHash = on
	return func() { batchHash = old }
}

// SumX16 is sha256x16.sum for benchmarks: the digests of msgs (at most 16,
// all inside arena), 16 lanes at a time where the CPU has AVX-512.
func SumX16(arena []byte, msgs [][]byte, sums [][32]byte) {
	newSHA256x16().sum(arena, msgs, sums)
}
