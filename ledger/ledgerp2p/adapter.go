package ledgerp2p

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/weftgrid/weft/ledger"
	"github.com/weftgrid/weft/p2p"
)

// TopicName is the grid topic entries are gossiped on.
const TopicName = "ledger"

// Node is what the adapter needs from the p2p layer (*p2p.Node).
type Node interface {
	Host() host.Host
	JoinTopic(name string, v pubsub.ValidatorEx, maxSize int) (*pubsub.Topic, error)
	ProtocolPrefix() protocol.ID
}

// Config tunes the adapter.
type Config struct {
	// Sync tunes anti-entropy (interval default 1 s).
	Sync ledger.SyncConfig
	// Log receives logs. Default slog.Default().
	Log *slog.Logger
	// Peers lists candidates for anti-entropy. Default: connected peers.
	Peers func() []peer.ID
}

// Adapter is a running connection between a ledger and the grid.
type Adapter struct {
	l     *ledger.Ledger
	h     host.Host
	proto protocol.ID
	// protoV1 is the sync protocol of nodes before per-log digests,
	// served and dialled too (see ledger.SyncProtocolV1).
	protoV1 protocol.ID
	topic   *pubsub.Topic
	sub     *pubsub.Subscription
	log     *slog.Logger
	peers   func() []peer.ID

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once
	notif  *network.NotifyBundle

	mu      sync.Mutex
	inbound map[peer.ID]int // sync streams being served, per peer
}

// MaxSyncStreamsPerPeer bounds the sync exchanges one peer may hold open
// with this node at once (an honest peer runs one at a time, plus one it
// starts on connecting); a stream beyond it is reset at once. Each served
// exchange may run, and verify what it receives, until its 2-minute
// deadline, so without a bound one peer opening streams could hold any
// number of them.
const MaxSyncStreamsPerPeer = 4

var (
	_ ledger.Broadcaster  = (*Adapter)(nil)
	_ ledger.StreamOpener = (*Adapter)(nil)
	_ ledger.PeerPicker   = (*Adapter)(nil)
)

// New joins the ledger topic, serves the sync protocol, starts the
// subscription loop and the ledger's anti-entropy, and sets itself as the
// ledger's broadcaster.
func New(ctx context.Context, l *ledger.Ledger, n Node, cfg Config) (*Adapter, error) {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	a := &Adapter{l: l, h: n.Host(), proto: n.ProtocolPrefix() + protocol.ID(ledger.SyncProtocol),
		protoV1: n.ProtocolPrefix() + protocol.ID(ledger.SyncProtocolV1), log: cfg.Log, peers: cfg.Peers}
	if a.peers == nil {
		a.peers = func() []peer.ID { return a.h.Network().Peers() }
	}
	a.ctx, a.cancel = context.WithCancel(ctx)
	t, err := n.JoinTopic(TopicName, a.validate, ledger.MaxEntrySize)
	if err != nil {
		a.cancel()
		return nil, fmt.Errorf("ledger: join topic: %w", err)
	}
	a.topic = t
	if a.sub, err = t.Subscribe(pubsub.WithBufferSize(4096)); err != nil {
		a.cancel()
		t.Close()
		return nil, fmt.Errorf("ledger: subscribe: %w", err)
	}
	a.h.SetStreamHandler(a.proto, a.serve)
	a.h.SetStreamHandler(a.protoV1, a.serve)
	// Both ends see a new connection; the exchange is two-way, so only the
	// end with the lower peer ID starts it.
	a.notif = &network.NotifyBundle{ConnectedF: func(_ network.Network, c network.Conn) {
		if p := c.RemotePeer(); a.h.ID() < p {
			l.TriggerSync(p)
		}
	}}
	a.h.Network().Notify(a.notif)
	a.wg.Add(1)
	go a.receive()
	l.SetBroadcaster(a)
	l.StartSync(a.ctx, a, a, cfg.Sync)
	return a, nil
}

// validate is the topic validator: only entries that decode and verify are
// delivered and forwarded; entries already held are ignored (not forwarded
// again, no penalty). The decoded entry rides along in ValidatorData.
func (a *Adapter) validate(_ context.Context, from peer.ID, m *pubsub.Message) pubsub.ValidationResult {
	if from == a.h.ID() {
		// Our own publish: Append made and stored the entry; still refuse
		// anything that does not verify.
		if _, err := ledger.DecodeVerified(m.Data); err != nil {
			return pubsub.ValidationReject
		}
		return pubsub.ValidationAccept
	}
	if len(m.Data) <= ledger.MaxEntrySize && a.l.Has(ledger.CIDOf(m.Data)) {
		return pubsub.ValidationIgnore // held already: valid, nothing to forward
	}
	e, err := ledger.DecodeVerified(m.Data)
	if err != nil {
		a.log.Debug("ledger: gossip rejected", "from", from, "err", err)
		return pubsub.ValidationReject
	}
	m.ValidatorData = e
	return pubsub.ValidationAccept
}

// receive stores gossiped entries, batching what is already queued into one
// durable commit.
func (a *Adapter) receive() {
	defer a.wg.Done()
	p2p.ReadSubscription(a.ctx, a.sub, a.h.ID(), func(m *pubsub.Message) {
		e, ok := m.ValidatorData.(*ledger.Entry)
		if !ok {
			return
		}
		if _, err := a.l.AddVerified(a.ctx, []*ledger.Entry{e}); err != nil && !errors.Is(err, ledger.ErrClosed) {
			a.log.Warn("ledger: storing gossiped entry", "cid", e.CID(), "err", err)
		}
	})
}

func (a *Adapter) serve(s network.Stream) {
	p := s.Conn().RemotePeer()
	a.mu.Lock()
	if a.inbound == nil {
		a.inbound = map[peer.ID]int{}
	}
	if a.inbound[p] >= MaxSyncStreamsPerPeer {
		a.mu.Unlock()
		a.log.Debug("ledger: too many sync streams from one peer; refused", "peer", p)
		_ = s.Reset()
		return
	}
	a.inbound[p]++
	a.mu.Unlock()
	defer func() {
		a.mu.Lock()
		if a.inbound[p]--; a.inbound[p] <= 0 {
			delete(a.inbound, p)
		}
		a.mu.Unlock()
	}()
	defer s.Close()
	_ = s.SetDeadline(time.Now().Add(2 * time.Minute))
	// Close must not wait for a stalled peer's deadline.
	stop := context.AfterFunc(a.ctx, func() { _ = s.Reset() })
	defer stop()
	if _, err := a.l.ServeSync(a.ctx, s); err != nil && !errors.Is(err, io.EOF) {
		a.log.Debug("ledger: serving sync", "peer", s.Conn().RemotePeer(), "err", err)
		_ = s.Reset()
	}
}

// Broadcast publishes an entry on the ledger topic.
func (a *Adapter) Broadcast(ctx context.Context, entry []byte) error {
	return a.topic.Publish(ctx, entry)
}

// OpenSync opens a sync stream to p.
func (a *Adapter) OpenSync(ctx context.Context, p peer.ID) (io.ReadWriteCloser, error) {
	s, err := a.h.NewStream(network.WithAllowLimitedConn(ctx, "ledger"), p, a.proto, a.protoV1) // the newest the peer speaks; relayed if need be
	if err != nil {
		return nil, err
	}
	return s, nil
}

// Peers lists anti-entropy candidates.
func (a *Adapter) Peers() []peer.ID { return a.peers() }

// Close stops everything the adapter started. Idempotent.
func (a *Adapter) Close() error {
	a.once.Do(func() {
		a.l.SetBroadcaster(nil)
		a.h.Network().StopNotify(a.notif)
		a.h.RemoveStreamHandler(a.proto)
		a.h.RemoveStreamHandler(a.protoV1)
		a.cancel()
		a.sub.Cancel()
		a.wg.Wait()
		_ = a.topic.Close()
	})
	return nil
}
