package schedp2p

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/weftgrid/weft/p2p"
	"github.com/weftgrid/weft/p2p/streamserve"
	"github.com/weftgrid/weft/scheduler"
)

// Market wire settings: the names other nodes must agree on.
const (
	// TopicName is the grid topic carrying auction announcements.
	TopicName = "market/requests"
	// Protocol is the direct-message stream protocol (after the grid's prefix).
	Protocol = "/market/msg/1.0.0"
	// StreamTimeout bounds one direct message (open, write, read).
	StreamTimeout = 10 * time.Second
	// InboundQueue bounds the messages waiting for the market's loop.
	InboundQueue = 4096
	// InboundBytes bounds their bytes.
	InboundBytes = 64 << 20
	// PeerInbound bounds the messages of one peer (for announcements on
	// the topic: of one auctioneer) waiting for the market's loop.
	PeerInbound = 256
	// PeerInboundBytes bounds their bytes.
	PeerInboundBytes = 4 << 20
	// MaxStreamsPerPeer bounds the direct-message streams of one peer
	// being read at once; more are reset at once. A market sends one
	// message at a time per peer, but a sender's write ends before the
	// reader's handler does, so a loaded receiver may hold a few of an
	// honest peer's streams at once: the bound leaves room for that.
	MaxStreamsPerPeer = 64
)

// ErrFrame is returned for a direct message over the size bound.
var ErrFrame = errors.New("schedp2p: frame over the size bound")

// Transport is the market's Transport over libp2p: announcements on
// a gossipsub topic (validated: a well-formed, correctly signed
// announcement under the size bound), everything else on a stream
// protocol, one length-prefixed message per stream. What arrives waits
// for the market's loop in one queue per peer (per auctioneer for
// announcements), taken in turn and bounded (PeerInbound, PeerInboundBytes,
// InboundQueue, InboundBytes), so a peer sending faster than the loop
// takes its messages crowds out only its own; at most MaxStreamsPerPeer
// inbound streams per peer are read at once.
type Transport struct {
	host    host.Host
	self    peer.ID
	proto   protocol.ID
	topic   *pubsub.Topic
	sub     *pubsub.Subscription
	inbox   *inbox
	streams *streamserve.Server
	log     *slog.Logger
	dropped atomic.Uint64
	handled atomic.Uint64 // inbound streams done with (delivered, dropped, bad or refused)

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once
}

var _ scheduler.Transport = (*Transport)(nil)

// New joins the market topic on n and registers the stream
// handler. Close leaves both.
func New(ctx context.Context, n *p2p.Node, log *slog.Logger) (*Transport, error) {
	t := &Transport{
		host: n.Host(), self: n.ID(), proto: n.ProtocolPrefix() + Protocol, log: log,
	}
	t.inbox = newInbox(&t.dropped)
	gate := &announceGate{self: n.ID(), member: n.IsMember, lim: newRateLimiter(AnnounceRate, AnnounceBurst)}
	topic, err := n.JoinTopic(TopicName, gate.validate, scheduler.MaxMessageBytes)
	if err != nil {
		return nil, err
	}
	sub, err := topic.Subscribe()
	if err != nil {
		_ = topic.Close()
		return nil, fmt.Errorf("market: subscribe: %w", err)
	}
	t.topic, t.sub = topic, sub
	t.ctx, t.cancel = context.WithCancel(ctx)
	t.streams = streamserve.New(t.host, t.proto, MaxStreamsPerPeer, func(network.Stream) { t.handled.Add(1) }, t.handleStream)
	t.wg.Add(2)
	go t.readTopic()
	go func() {
		defer t.wg.Done()
		t.inbox.run(t.ctx)
	}()
	return t, nil
}

// validateAnnouncement accepts only a signed announcement that decodes and
// verifies (the size bound is enforced by JoinTopic).
func validateAnnouncement(_ context.Context, _ peer.ID, m *pubsub.Message) pubsub.ValidationResult {
	s, err := scheduler.DecodeSigned(m.Data)
	if err != nil || s.Kind != scheduler.KindAnnounce || s.Verify() != nil {
		return pubsub.ValidationReject
	}
	return pubsub.ValidationAccept
}

// announceGate is the topic's validator: a valid announcement (see
// validateAnnouncement), within its auctioneer's rate (AnnounceRate after
// AnnounceBurst; one shared allowance for auctioneers that are no known
// members, since keys are free). Over the rate an announcement is ignored:
// neither delivered nor relayed, and no penalty for the peer that relayed
// it. So a flood of valid announcements is not carried across the grid.
type announceGate struct {
	self   peer.ID
	member func(peer.ID) bool
	lim    *rateLimiter
}

func (g *announceGate) validate(ctx context.Context, from peer.ID, m *pubsub.Message) pubsub.ValidationResult {
	if r := validateAnnouncement(ctx, from, m); r != pubsub.ValidationAccept {
		return r
	}
	s, _ := scheduler.DecodeSigned(m.Data)
	key := s.Signer
	if key == g.self {
		return pubsub.ValidationAccept
	}
	if !g.member(key) {
		key = ""
	}
	if !g.lim.allow(key) {
		return pubsub.ValidationIgnore
	}
	return pubsub.ValidationAccept
}

func (t *Transport) readTopic() {
	defer t.wg.Done()
	p2p.ReadSubscription(t.ctx, t.sub, t.self, func(m *pubsub.Message) {
		if m.GetFrom() == t.self {
			return // the market handles its own broadcasts locally
		}
		// Queued by origin (libp2p-signed, verified by pubsub), not by
		// the peer that forwarded it: a flooding auctioneer fills its
		// own queue, not its forwarders'.
		t.inbox.put("topic/"+string(m.GetFrom()), scheduler.Inbound{From: m.ReceivedFrom, Data: m.Data})
	})
}

func (t *Transport) handleStream(_ context.Context, s network.Stream) {
	defer t.handled.Add(1)
	defer s.Close()
	_ = s.SetDeadline(time.Now().Add(StreamTimeout))
	data, err := readFrame(bufio.NewReader(s), scheduler.MaxMessageBytes)
	if err != nil {
		_ = s.Reset()
		t.log.Debug("market: bad direct message", "from", s.Conn().RemotePeer(), "err", err)
		return
	}
	from := s.Conn().RemotePeer()
	t.inbox.put("peer/"+string(from), scheduler.Inbound{From: from, Data: data})
}

// Broadcast publishes an announcement on the market topic.
func (t *Transport) Broadcast(ctx context.Context, data []byte) error {
	return t.topic.Publish(ctx, data)
}

// Send opens a stream to peer to and writes one framed message, within
// ctx's deadline and at most StreamTimeout: the dial, the stream's opening
// and the write all end at that deadline (the stream is reset then, so a
// peer that stopped reading, or a connection that died without a word,
// holds the caller no longer than the deadline — not until the
// connection's keepalive gives up).
func (t *Transport) Send(ctx context.Context, to peer.ID, data []byte) error {
	if len(data) > scheduler.MaxMessageBytes {
		return ErrFrame
	}
	ctx, cancel := context.WithTimeout(ctx, StreamTimeout)
	defer cancel()
	deadline, _ := ctx.Deadline()
	ctx = network.WithDialPeerTimeout(ctx, time.Until(deadline))
	ctx = network.WithAllowLimitedConn(ctx, "market")
	s, err := t.host.NewStream(ctx, to, t.proto)
	if err != nil {
		return fmt.Errorf("market: stream to %s: %w", to, err)
	}
	stop := context.AfterFunc(ctx, func() { _ = s.Reset() })
	defer stop()
	_ = s.SetDeadline(deadline)
	if err := writeFrame(s, data); err != nil {
		_ = s.Reset()
		return fmt.Errorf("market: send to %s: %w", to, err)
	}
	if err := s.Close(); err != nil {
		return fmt.Errorf("market: send to %s: %w", to, err)
	}
	return nil
}

// Inbound yields what other peers sent.
func (t *Transport) Inbound() <-chan scheduler.Inbound { return t.inbox.out }

// Close leaves the topic and removes the stream handler. Idempotent.
func (t *Transport) Close() error {
	t.once.Do(func() {
		_ = t.streams.Close()
		t.cancel()
		t.sub.Cancel()
		t.wg.Wait()
		_ = t.topic.Close()
	})
	return nil
}

// writeFrame writes a uvarint length and the data.
func writeFrame(w io.Writer, data []byte) error {
	var hdr [binary.MaxVarintLen64]byte
	n := binary.PutUvarint(hdr[:], uint64(len(data)))
	if _, err := w.Write(hdr[:n]); err != nil {
		return err
	}
	_, err := w.Write(data)
	return err
}

// readFrame reads one frame of at most limit bytes.
func readFrame(r *bufio.Reader, limit int) ([]byte, error) {
	n, err := binary.ReadUvarint(r)
	if err != nil {
		return nil, fmt.Errorf("market: frame length: %w", err)
	}
	if n == 0 || n > uint64(limit) {
		return nil, fmt.Errorf("%w: %d bytes (limit %d)", ErrFrame, n, limit)
	}
	// Grown as the body arrives, not sized from the header: a peer that
	// announces 64 KiB and trickles holds only what it sent.
	var buf bytes.Buffer
	if _, err := io.CopyN(&buf, r, int64(n)); err != nil {
		return nil, fmt.Errorf("market: frame body: %w", err)
	}
	return buf.Bytes(), nil
}
