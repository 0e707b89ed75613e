// Package transfer moves content (recipes, artifacts, batch results)
// between weft nodes over a libp2p stream protocol, <prefix>/content/1.0.0.
//
// A fetcher asks a provider for the blocks it lacks; the provider streams
// them root first, each block before those it links to. The fetcher accepts
// only blocks it asked for or that a block it already verified links to,
// checks every block's sha2-256 against its CID before the block joins the
// store (until then it is only a temporary file), and on a mismatch, a
// truncated stream, a stall or a refusal moves on to the next provider,
// keeping what it already verified. Providers are found through a Routing
// (the Kademlia DHT in a node; transfertest.MemRouting in tests);
// fetched content is announced in turn.
//
// Usage:
//
//	svc, err := transfer.New(host, st, dht, transfer.DefaultConfig(), log)
//	svc.Start(ctx)
//	defer svc.Close()
//	svc.Provide(ctx, recipeCID)          // after publishing
//	err = svc.Fetch(ctx, recipeCID)      // anywhere on the grid
//
// Concurrency: a Service is safe for concurrent use; concurrent fetches of
// one CID share a transfer. Close cancels transfers and waits for them.
package transfer
