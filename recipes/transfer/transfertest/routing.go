package transfertest

import (
	"context"
	"sync"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/weftgrid/weft/recipes/transfer"
)

// MemRouting is a provider table in memory, standing in for the DHT.
type MemRouting struct {
	mu    sync.Mutex
	provs map[cid.Cid][]peer.AddrInfo
}

// NewMemRouting returns an empty table.
func NewMemRouting() *MemRouting { return &MemRouting{provs: map[cid.Cid][]peer.AddrInfo{}} }

// For returns the routing as seen by h: what h provides is recorded under h.
func (m *MemRouting) For(h host.Host) transfer.Routing { return &hostRouting{m: m, h: h} }

// Add records p as a provider of c.
func (m *MemRouting) Add(c cid.Cid, p peer.AddrInfo) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, q := range m.provs[c] {
		if q.ID == p.ID {
			return
		}
	}
	m.provs[c] = append(m.provs[c], p)
}

// Providers returns the providers recorded for c.
func (m *MemRouting) Providers(c cid.Cid) []peer.ID {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []peer.ID
	for _, p := range m.provs[c] {
		out = append(out, p.ID)
	}
	return out
}

type hostRouting struct {
	m *MemRouting
	h host.Host
}

var _ transfer.Routing = (*hostRouting)(nil)

func (r *hostRouting) Provide(ctx context.Context, c cid.Cid, announce bool) error {
	r.m.Add(c, peer.AddrInfo{ID: r.h.ID(), Addrs: r.h.Addrs()})
	return nil
}

func (r *hostRouting) FindProvidersAsync(ctx context.Context, c cid.Cid, count int) <-chan peer.AddrInfo {
	r.m.mu.Lock()
	ps := append([]peer.AddrInfo(nil), r.m.provs[c]...)
	r.m.mu.Unlock()
	if len(ps) > count {
		ps = ps[:count]
	}
	ch := make(chan peer.AddrInfo, len(ps))
	for _, p := range ps {
		ch <- p
	}
	close(ch)
	return ch
}
