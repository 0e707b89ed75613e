// Package ledgerp2p connects a ledger.Ledger to a libp2p host: new entries
// are published on the grid's ledger topic (with a pubsub validator that
// verifies each entry before it is delivered or forwarded), and
// anti-entropy runs over a libp2p stream protocol with random connected
// peers at an interval and with each newly connected peer.
//
// Usage:
//
//	a, err := ledgerp2p.New(ctx, l, node, ledgerp2p.Config{}) // node: *p2p.Node
//	defer a.Close()
//
// Concurrency: an Adapter is safe for concurrent use; Close is idempotent
// and waits for its goroutines.
package ledgerp2p
