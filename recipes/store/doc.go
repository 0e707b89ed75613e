// Package store keeps weft's content on disk, addressed by CID: recipes
// (their canonical encoding, codec dag-cbor), blobs cut into 1 MiB raw
// chunks with a file manifest, and directory trees (batch results) as a
// manifest of paths, modes, sizes and chunks.
//
// Layout under the store directory:
//
//	blocks/<last two characters of the CID>/<CID>   one file per block
//	recipes/<CID>                                   empty marker: a recipe
//	roots/<CID>                                     empty marker: content to announce
//	tmp/                                            writes in progress
//
// Every block is written to tmp/ and renamed into place (a transfer
// receives a block into tmp/ with a BlockWriter and commits it only once
// its hash matched); Sync fsyncs the blocks written since the last Sync
// (the Put functions and a completed transfer call it), so acknowledged
// content survives a crash. A block damaged by a crash before its Sync
// fails its hash check when read, is removed and counts as missing, so it
// is fetched again; tmp/ is emptied at Open.
//
// Usage:
//
//	s, err := store.Open(filepath.Join(dataDir, "content"))
//	c, err := s.PutRecipe(r)          // c == r.CID()
//	blob, err := s.PutFile("app.tar") // chunks + manifest
//	tree, err := s.PutDir(outDir)     // a batch result
//	err = s.GetDir(ctx, tree, dst)
//	missing, err := s.Missing(c)      // what a transfer must fetch
//
// Concurrency: a Store is safe for concurrent use by several goroutines and
// processes; blocks are immutable and writes of the same block are idempotent.
package store
