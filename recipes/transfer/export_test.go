package transfer

// SetBatchHash turns checking raw chunks in batches (sha256x16) on or off
// for the fetchers of this process, so that tests cover both paths on any
// CPU; restore puts the previous setting back.
func SetBatchHash(on bool) (restore func()) {
	old := batchHash
	batchHash = on
	return func() { batchHash = old }
}
