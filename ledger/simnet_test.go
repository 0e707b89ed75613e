package ledger

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// simNet is an in-memory network of ledger replicas: gossip delivers to
// every linked replica, anti-entropy streams are net.Pipe pairs served by
// the target's ServeSync. Groups model partitions: while partitioned, only
// replicas of the same group are linked.
type simNet struct {
	ctx         context.Context
	mu          sync.Mutex
	nodes       map[peer.ID]*Ledger
	order       []peer.ID
	group       map[peer.ID]int
	partitioned bool
	wg          sync.WaitGroup
}

var errCut = errors.New("simnet: link cut")

func newSimNet(ctx context.Context) *simNet {
	return &simNet{ctx: ctx, nodes: map[peer.ID]*Ledger{}, group: map[peer.ID]int{}}
}

func (n *simNet) add(l *Ledger, group int) {
	n.mu.Lock()
	n.nodes[l.ID()] = l
	n.order = append(n.order, l.ID())
	n.group[l.ID()] = group
	n.mu.Unlock()
	l.SetBroadcaster(simBroadcaster{n, l.ID()})
}

func (n *simNet) linked(a, b peer.ID) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return a != b && (!n.partitioned || n.group[a] == n.group[b])
}

func (n *simNet) setPartitioned(p bool) {
	n.mu.Lock()
	n.partitioned = p
	n.mu.Unlock()
}

func (n *simNet) peersOf(self peer.ID) []peer.ID {
	var out []peer.ID
	n.mu.Lock()
	ids := append([]peer.ID(nil), n.order...)
	n.mu.Unlock()
	for _, p := range ids {
		if n.linked(self, p) {
			out = append(out, p)
		}
	}
	return out
}

type simBroadcaster struct {
	n    *simNet
	self peer.ID
}

func (b simBroadcaster) Broadcast(ctx context.Context, raw []byte) error {
	for _, p := range b.n.peersOf(b.self) {
		b.n.mu.Lock()
		l := b.n.nodes[p]
		b.n.mu.Unlock()
		b.n.wg.Add(1)
		go func() {
			defer b.n.wg.Done()
			_, _ = l.Ingest(b.n.ctx, [][]byte{raw})
		}()
	}
	return nil
}

type simPeer struct {
	n    *simNet
	self peer.ID
}

func (s simPeer) Peers() []peer.ID { return s.n.peersOf(s.self) }

func (s simPeer) OpenSync(ctx context.Context, p peer.ID) (io.ReadWriteCloser, error) {
	if !s.n.linked(s.self, p) {
		return nil, errCut
	}
	s.n.mu.Lock()
	target := s.n.nodes[p]
	s.n.mu.Unlock()
	a, b := net.Pipe()
	s.n.wg.Add(1)
	go func() {
		defer s.n.wg.Done()
		defer b.Close()
		_ = b.SetDeadline(time.Now().Add(time.Minute))
		_, _ = target.ServeSync(s.n.ctx, b)
	}()
	return a, nil
}

func (n *simNet) startSync(interval time.Duration) {
	for i, id := range n.order {
		l := n.nodes[id]
		l.StartSync(n.ctx, simPeer{n, id}, simPeer{n, id}, SyncConfig{Interval: interval, Seed: uint64(i + 1)})
	}
}

// converged reports whether every replica has the same root.
func (n *simNet) converged() bool {
	var root []byte
	for _, id := range n.order {
		r := n.nodes[id].Root()
		if root == nil {
			root = r
		} else if !bytes.Equal(root, r) {
			return false
		}
	}
	return true
}

func (n *simNet) groupConverged(g int) bool {
	var root []byte
	for _, id := range n.order {
		if n.group[id] != g {
			continue
		}
		r := n.nodes[id].Root()
		if root == nil {
			root = r
		} else if !bytes.Equal(root, r) {
			return false
		}
	}
	return true
}

// heal ends the partition and, like a libp2p connect notification, has
// each pair (i, i+n/2) — one replica of each side — sync once, initiated by
// the lower peer ID as the adapter does.
func (n *simNet) heal() {
	n.setPartitioned(false)
	for i, id := range n.order {
		other := n.order[(i+len(n.order)/2)%len(n.order)]
		if id < other { // both ends see the connection; the lower ID initiates
			n.nodes[id].TriggerSync(other)
		}
	}
}

func buildSimNet(tb testing.TB, ctx context.Context, size int) *simNet {
	n := newSimNet(ctx)
	for i := 0; i < size; i++ {
		l, err := Open(Config{Signer: deterministicSigner(tb, byte(100+i)), Workers: 1})
		if err != nil {
			tb.Fatal(err)
		}
		n.add(l, i%2)
	}
	return n
}

func (n *simNet) close() {
	for _, id := range n.order {
		n.nodes[id].Close()
	}
	n.wg.Wait()
}

func TestPartitionedReplicasHealToOneRoot(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	n := buildSimNet(t, ctx, 8)
	defer n.close()
	n.setPartitioned(true)
	n.startSync(20 * time.Millisecond)
	for round := 0; round < 5; round++ {
		for _, id := range n.order {
			if _, err := n.nodes[id].Append(ctx, Grant{To: id, Amount: uint64(round)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	waitFor(t, 20*time.Second, "each side converges", func() bool { return n.groupConverged(0) && n.groupConverged(1) })
	if n.converged() {
		t.Fatal("sides converged across the partition")
	}
	if got := n.nodes[n.order[0]].Len(); got != 5*4 {
		t.Fatalf("side 0 replica holds %d entries, want 20", got)
	}
	n.heal()
	waitFor(t, 20*time.Second, "all replicas converge after heal", n.converged)
	for _, id := range n.order {
		l := n.nodes[id]
		if l.Len() != 40 {
			t.Fatalf("replica %s holds %d entries, want 40", id, l.Len())
		}
		if r := l.Audit(); !r.OK {
			t.Fatalf("audit: %+v", r.Problems)
		}
	}
}

func TestSyncMovesOnlyWhatIsMissing(t *testing.T) {
	ctx := context.Background()
	m := newMarket(t, 60)
	es := []*Entry{m.ce}
	for i := 0; i < 50; i++ {
		es = append(es, m.receipt(t, Usage{CPUMicros: 5}))
	}
	a, b := memLedger(t, nil), memLedger(t, nil)
	if _, err := a.Ingest(ctx, rawsOf(es)); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Ingest(ctx, rawsOf(es[:40])); err != nil {
		t.Fatal(err)
	}
	c1, c2 := net.Pipe()
	done := make(chan SyncStats, 1)
	go func() { st, _ := a.ServeSync(ctx, c2); c2.Close(); done <- st }()
	st, err := b.Sync(ctx, c1)
	c1.Close()
	if err != nil {
		t.Fatal(err)
	}
	served := <-done
	if st.Received != 11 || st.Added != 11 || served.Sent != 11 || st.Sent != 0 {
		t.Fatalf("moved %+v / served %+v, want exactly the 11 missing entries", st, served)
	}
	if !bytes.Equal(a.Root(), b.Root()) {
		t.Fatal("roots differ after sync")
	}
	// Equal roots: nothing but hellos.
	c1, c2 = net.Pipe()
	go func() { _, _ = a.ServeSync(ctx, c2); c2.Close() }()
	st, err = b.Sync(ctx, c1)
	c1.Close()
	if err != nil || !st.Same {
		t.Fatalf("second sync: %+v %v", st, err)
	}
}
