// Package p2p is weft's network layer: a libp2p host with a persistent
// Ed25519 identity (TCP and QUIC on the public grid, TCP with the grid's
// private-network key on a private one; Noise; resource and connection
// managers), a Kademlia DHT in server mode under the grid's protocol prefix,
// gossipsub with strict signing and a validator on every topic, and
// hashicorp/memberlist for membership and SWIM failure detection, carried on
// libp2p streams (node name = peer ID). Each member's metadata is its signed
// capacity advert. Discovery runs through bootstrap addresses, mDNS and DHT
// rendezvous; AutoNAT, hole punching and a relay service help nodes behind NAT.
//
// Usage:
//
//	cfg := p2p.DefaultConfig()
//	cfg.DataDir = dir
//	cfg.Bootstrap = []string{"/ip4/192.0.2.1/tcp/4001/p2p/12D3Koo..."}
//	n, err := p2p.New(ctx, cfg)
//	defer n.Close()                                   // leaves the grid gracefully
//	t, err := n.JoinTopic("requests", validate, 64<<10) // namespaced per grid
//	ch, cancel := n.SubscribeMembers()                // join/alive/suspect/dead/leave/update
//	proto := n.ProtocolPrefix() + "/bids/1"           // stream protocols per grid
//
// Private grids: package grid holds the grid file and the founder-signed
// member list; a node started with Config.GridFile refuses every connection
// from peers without the key (pnet) or absent from the list (connection
// gater). The founder calls Admit and Revoke; new list versions spread to
// every connected member, which stores and enforces them.
//
// Concurrency: every exported method of Node is safe for concurrent use.
// Membership events are delivered on buffered channels from memberlist's
// goroutines; Close is idempotent, leaves the membership, stops discovery,
// pubsub, the DHT and the host, and waits for the node's goroutines.
package p2p
