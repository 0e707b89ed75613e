package daemon

import (
	"bufio"
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
	"github.com/weftgrid/weft/scheduler"
)

// Market wire settings.
const (
	// marketTopic is the grid topic carrying auction announcements.
	marketTopic = "market/requests"
	// marketProto is the direct-message stream protocol (after the grid's prefix).
	marketProto = "/market/msg/1.0.0"
	// marketStreamTimeout bounds one direct message (open, write, read).
	marketStreamTimeout = 10 * time.Second
	// marketInboundQueue bounds the messages waiting for the market's loop.
	marketInboundQueue = 4096
)

// errMarketFrame is returned for a direct message over the size bound.
var errMarketFrame = errors.New("market: frame over the size bound")

// libp2pTransport is the market's Transport over libp2p: announcements on
// a gossipsub topic (validated: a well-formed, correctly signed
// announcement under the size bound), everything else on a stream
// protocol, one length-prefixed message per stream.
type libp2pTransport struct {
	host    host.Host
	self    peer.ID
	proto   protocol.ID
	topic   *pubsub.Topic
	sub     *pubsub.Subscription
	in      chan scheduler.Inbound
	log     *slog.Logger
	dropped atomic.Uint64

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once
}

var _ scheduler.Transport = (*libp2pTransport)(nil)

// newLibp2pTransport joins the market topic on n and registers the stream
// handler. Close leaves both.
func newLibp2pTransport(ctx context.Context, n *p2p.Node, log *slog.Logger) (*libp2pTransport, error) {
	t := &libp2pTransport{
		host: n.Host(), self: n.ID(), proto: n.ProtocolPrefix() + marketProto,
		in: make(chan scheduler.Inbound, marketInboundQueue), log: log,
	}
	topic, err := n.JoinTopic(marketTopic, validateAnnouncement, scheduler.MaxMessageBytes)
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
	t.host.SetStreamHandler(t.proto, t.handleStream)
	t.wg.Add(1)
	go t.readTopic()
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

func (t *libp2pTransport) readTopic() {
	defer t.wg.Done()
	for {
		m, err := t.sub.Next(t.ctx)
		if err != nil {
			return
		}
		if m.ReceivedFrom == t.self || m.GetFrom() == t.self {
			continue // the market handles its own broadcasts locally
		}
		t.deliver(scheduler.Inbound{From: m.ReceivedFrom, Data: m.Data})
	}
}

func (t *libp2pTransport) deliver(in scheduler.Inbound) {
	select {
	case t.in <- in:
	default:
		t.dropped.Add(1)
	}
}

func (t *libp2pTransport) handleStream(s network.Stream) {
	defer s.Close()
	_ = s.SetDeadline(time.Now().Add(marketStreamTimeout))
	data, err := readMarketFrame(bufio.NewReader(s), scheduler.MaxMessageBytes)
	if err != nil {
		_ = s.Reset()
		t.log.Debug("market: bad direct message", "from", s.Conn().RemotePeer(), "err", err)
		return
	}
	t.deliver(scheduler.Inbound{From: s.Conn().RemotePeer(), Data: data})
}

// Broadcast publishes an announcement on the market topic.
func (t *libp2pTransport) Broadcast(ctx context.Context, data []byte) error {
	return t.topic.Publish(ctx, data)
}

// Send opens a stream to peer to and writes one framed message.
func (t *libp2pTransport) Send(ctx context.Context, to peer.ID, data []byte) error {
	if len(data) > scheduler.MaxMessageBytes {
		return errMarketFrame
	}
	ctx, cancel := context.WithTimeout(ctx, marketStreamTimeout)
	defer cancel()
	s, err := t.host.NewStream(ctx, to, t.proto)
	if err != nil {
		return fmt.Errorf("market: stream to %s: %w", to, err)
	}
	_ = s.SetDeadline(time.Now().Add(marketStreamTimeout))
	if err := writeMarketFrame(s, data); err != nil {
		_ = s.Reset()
		return fmt.Errorf("market: send to %s: %w", to, err)
	}
	return s.Close()
}

// Inbound yields what other peers sent.
func (t *libp2pTransport) Inbound() <-chan scheduler.Inbound { return t.in }

// Close leaves the topic and removes the stream handler. Idempotent.
func (t *libp2pTransport) Close() error {
	t.once.Do(func() {
		t.host.RemoveStreamHandler(t.proto)
		t.cancel()
		t.sub.Cancel()
		t.wg.Wait()
		_ = t.topic.Close()
	})
	return nil
}

// writeMarketFrame writes a uvarint length and the data.
func writeMarketFrame(w io.Writer, data []byte) error {
	var hdr [binary.MaxVarintLen64]byte
	n := binary.PutUvarint(hdr[:], uint64(len(data)))
	if _, err := w.Write(hdr[:n]); err != nil {
		return err
	}
	_, err := w.Write(data)
	return err
}

// readMarketFrame reads one frame of at most limit bytes.
func readMarketFrame(r *bufio.Reader, limit int) ([]byte, error) {
	n, err := binary.ReadUvarint(r)
	if err != nil {
		return nil, fmt.Errorf("market: frame length: %w", err)
	}
	if n == 0 || n > uint64(limit) {
		return nil, fmt.Errorf("%w: %d bytes (limit %d)", errMarketFrame, n, limit)
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(r, buf); err != nil {
		return nil, fmt.Errorf("market: frame body: %w", err)
	}
	return buf, nil
}
