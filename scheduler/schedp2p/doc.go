// Package schedp2p connects a scheduler.Market to a libp2p node: it is the
// market's scheduler.Transport. Announcements are gossiped on the grid's
// TopicName topic (with a pubsub validator that accepts only well-formed,
// correctly signed announcements under the size bound); every other market
// message travels on the Protocol stream protocol (after the grid's
// prefix), one length-prefixed message per stream.
//
// Usage:
//
//	tr, err := schedp2p.New(ctx, node, log) // node: *p2p.Node
//	defer tr.Close()
//	m, err := scheduler.New(cfg, key, scheduler.Deps{Transport: tr, ...})
//
// Concurrency: a Transport is safe for concurrent use; Close is idempotent
// and waits for its goroutines.
package schedp2p
