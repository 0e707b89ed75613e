package simnet

import (
	"context"
	"sync/atomic"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/weftgrid/weft/scheduler"
)

// Rogue is a member without a market: a goroutine runs Handle for each
// message it receives and may send anything back (floods, forgeries,
// replays), for tests of what the markets withstand.
type Rogue struct {
	net    *Network
	ID     peer.ID
	Key    crypto.PrivKey
	Signer *scheduler.Signer
	// Handled counts messages handled.
	Handled atomic.Uint64
}

// AddRogue adds a rogue member whose advert claims a large free capacity.
// handle runs on the rogue's goroutine until ctx ends.
func (n *Network) AddRogue(ctx context.Context, handle func(r *Rogue, in scheduler.Inbound)) (*Rogue, error) {
	key, _, err := crypto.GenerateEd25519Key(reader{n})
	if err != nil {
		return nil, err
	}
	s, err := scheduler.NewSigner(key)
	if err != nil {
		return nil, err
	}
	big := scheduler.Resources{CPUMillis: 1 << 20, MemoryBytes: 1 << 50, DiskBytes: 1 << 50}
	node := &Node{net: n, ID: s.ID(), Key: key, inbox: make(chan scheduler.Inbound, n.opts.InboxSize),
		Runner: NewRunner(s.ID(), big, 1<<20)}
	node.up.Store(true)
	n.mu.Lock()
	n.nodes = append(n.nodes, node)
	n.byID[node.ID] = node
	n.mu.Unlock()
	r := &Rogue{net: n, ID: s.ID(), Key: key, Signer: s}
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case in := <-node.inbox:
				handle(r, in)
				r.Handled.Add(1)
			}
		}
	}()
	return r, nil
}

// Send delivers data to a peer as if sent by the rogue.
func (r *Rogue) Send(to peer.ID, data []byte) { r.net.deliver(r.ID, to, data) }

// Inject puts data into a node's inbox as if from from, bypassing
// reachability (a forger on the path).
func (n *Network) Inject(from, to peer.ID, data []byte) bool {
	dst := n.Node(to)
	if dst == nil {
		return false
	}
	select {
	case dst.inbox <- scheduler.Inbound{From: from, Data: data}:
		return true
	default:
		return false
	}
}
