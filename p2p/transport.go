package p2p

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// StreamPacketSize is memberlist's packet size (UDPBufferSize) on the
// libp2p transport, in bytes.
const StreamPacketSize = 16 << 10

// maxPacket bounds one memberlist packet carried on a libp2p stream.
const maxPacket = 256 << 10

// maxPacketStreamsPerPeer bounds the inbound packet streams of one peer
// read at once; more are reset.
const maxPacketStreamsPerPeer = 4

// packetQueue is the per-peer queue of outbound packets; beyond it packets
// are dropped, as UDP would.
const packetQueue = 256

// ErrNoName means memberlist addressed a node without a name; the libp2p
// transport routes by name (= peer ID) only.
var ErrNoName = errors.New("p2p: memberlist address without node name")

// StreamTransport is a memberlist.NodeAwareTransport over libp2p streams.
// Packets to one peer share one long-lived stream, each framed by a 4-byte
// length; memberlist's streams map to libp2p streams one to one. Nodes are
// addressed by name = peer ID; the host:port memberlist keeps is only a
// placeholder. Node uses it internally; NewStreamTransport exposes it for
// simulations on other hosts (e.g. go-libp2p's x/simlibp2p).
type StreamTransport = streamTransport

type streamTransport struct {
	h           host.Host
	ctx         context.Context
	cancel      context.CancelFunc
	log         *slog.Logger
	timeout     time.Duration
	packetProto protocol.ID
	streamProto protocol.ID
	packetCh    chan *memberlist.Packet
	streamCh    chan net.Conn

	mu  sync.Mutex
	out map[peer.ID]*packetSender
	in  map[network.Stream]struct{} // inbound packet streams, reset by Shutdown
	// perPeer counts each peer's inbound packet streams (at most
	// maxPacketStreamsPerPeer: an honest peer has one at a time, and a
	// new one while its old one ends).
	perPeer map[peer.ID]int
	shut    bool
	wg      sync.WaitGroup // packet senders
	hwg     sync.WaitGroup // inbound stream handlers
}

var _ memberlist.NodeAwareTransport = (*streamTransport)(nil)

// NewStreamTransport serves memberlist on h under prefix; timeout bounds
// stream opening and writes (use memberlist's TCPTimeout).
func NewStreamTransport(h host.Host, prefix protocol.ID, timeout time.Duration, log *slog.Logger) *StreamTransport {
	if log == nil {
		log = slog.Default()
	}
	ctx, cancel := context.WithCancel(context.Background())
	t := &streamTransport{
		h:           h,
		ctx:         ctx,
		cancel:      cancel,
		log:         log,
		timeout:     timeout,
		packetProto: prefix + "/memberlist/packet/1",
		streamProto: prefix + "/memberlist/stream/1",
		packetCh:    make(chan *memberlist.Packet, 1024),
		streamCh:    make(chan net.Conn, 64),
		out:         map[peer.ID]*packetSender{},
		in:          map[network.Stream]struct{}{},
		perPeer:     map[peer.ID]int{},
	}
	h.SetStreamHandler(t.packetProto, t.handlePackets)
	h.SetStreamHandler(t.streamProto, t.handleStream)
	return t
}

// JoinAddr is what memberlist.Join needs to reach id over this transport.
func (t *streamTransport) JoinAddr(id peer.ID) string { return id.String() + "/" + t.placeholderAddr() }

// placeholderIP and placeholderPort are the host:port memberlist records
// for every node on this transport; routing ignores it and uses the node
// name. It must not follow the libp2p listen addresses: memberlist rejects
// an alive message whose address differs from the one it holds for a live
// node ("conflicting address"), so a member restarted with the same
// identity on another port would have every alive message, and so every
// new advert, ignored for as long as its probes (routed by name) succeed.
var placeholderIP = net.IPv4(127, 0, 0, 1)

const placeholderPort = 1

func (t *streamTransport) placeholderAddr() string {
	return net.JoinHostPort(placeholderIP.String(), strconv.Itoa(placeholderPort))
}

func (t *streamTransport) FinalAdvertiseAddr(string, int) (net.IP, int, error) {
	return placeholderIP, placeholderPort, nil
}

func (t *streamTransport) WriteTo(b []byte, addr string) (time.Time, error) {
	return time.Time{}, fmt.Errorf("%w: %s", ErrNoName, addr)
}

func (t *streamTransport) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	id, err := peer.Decode(a.Name)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: %q: %w", ErrNoName, a.Name, err)
	}
	if len(b) > maxPacket {
		return time.Time{}, fmt.Errorf("%w: packet of %d bytes", ErrTooLarge, len(b))
	}
	t.mu.Lock()
	if t.shut {
		t.mu.Unlock()
		return time.Time{}, ErrClosed
	}
	s, ok := t.out[id]
	if !ok {
		s = &packetSender{t: t, id: id, q: make(chan []byte, packetQueue)}
		t.out[id] = s
		t.wg.Add(1)
		go s.run()
	}
	select {
	case s.q <- append([]byte(nil), b...):
	default: // queue full: drop, like a lost datagram
	}
	t.mu.Unlock()
	return time.Now(), nil
}

func (t *streamTransport) PacketCh() <-chan *memberlist.Packet { return t.packetCh }

func (t *streamTransport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	return nil, fmt.Errorf("%w: %s", ErrNoName, addr)
}

func (t *streamTransport) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	id, err := peer.Decode(a.Name)
	if err != nil {
		return nil, fmt.Errorf("%w: %q: %w", ErrNoName, a.Name, err)
	}
	ctx, cancel := context.WithTimeout(t.ctx, timeout)
	defer cancel()
	s, err := t.h.NewStream(network.WithAllowLimitedConn(ctx, "memberlist"), id, t.streamProto)
	if err != nil {
		return nil, err
	}
	return &streamConn{Stream: s}, nil
}

func (t *streamTransport) StreamCh() <-chan net.Conn { return t.streamCh }

func (t *streamTransport) Shutdown() error {
	t.mu.Lock()
	if t.shut {
		t.mu.Unlock()
		return nil
	}
	t.shut = true
	t.cancel()
	for _, s := range t.out {
		close(s.q)
	}
	t.out = nil
	in := t.in
	t.in = nil
	t.mu.Unlock()
	t.h.RemoveStreamHandler(t.packetProto)
	t.h.RemoveStreamHandler(t.streamProto)
	// A packet handler waits in a read for as long as the peer keeps its
	// stream open; the host may outlive the transport.
	for s := range in {
		s.Reset()
	}
	t.hwg.Wait()
	// memberlist stops taking streams at shutdown: close those it left.
drain:
	for {
		select {
		case c := <-t.streamCh:
			c.(*streamConn).Reset()
		default:
			break drain
		}
	}
	t.wg.Wait()
	return nil
}

// enter registers an inbound stream handler (and, with track, its stream
// for Shutdown to reset); it reports false once the transport is shut.
func (t *streamTransport) enter(s network.Stream, track bool) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.shut {
		return false
	}
	if track {
		p := s.Conn().RemotePeer()
		if t.perPeer[p] >= maxPacketStreamsPerPeer {
			return false
		}
		t.perPeer[p]++
		t.in[s] = struct{}{}
	}
	t.hwg.Add(1)
	return true
}

func (t *streamTransport) leave(s network.Stream) {
	t.mu.Lock()
	if _, ok := t.in[s]; ok {
		delete(t.in, s)
		p := s.Conn().RemotePeer()
		if t.perPeer[p]--; t.perPeer[p] <= 0 {
			delete(t.perPeer, p)
		}
	}
	t.mu.Unlock()
	t.hwg.Done()
}

func (t *streamTransport) handlePackets(s network.Stream) {
	defer s.Reset()
	if !t.enter(s, true) {
		return
	}
	defer t.leave(s)
	from := peerAddr(s.Conn().RemotePeer())
	r := bufio.NewReader(s)
	var hdr [4]byte
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return
		}
		size := binary.BigEndian.Uint32(hdr[:])
		if size == 0 || size > maxPacket {
			t.log.Debug("memberlist packet with bad size", "from", from.String(), "size", size)
			return
		}
		// Grown as the packet arrives, not sized from its header.
		var buf bytes.Buffer
		if _, err := io.CopyN(&buf, r, int64(size)); err != nil {
			return
		}
		p := &memberlist.Packet{Buf: buf.Bytes(), From: from, Timestamp: time.Now()}
		select {
		case t.packetCh <- p:
		case <-t.ctx.Done():
			return
		}
	}
}

func (t *streamTransport) handleStream(s network.Stream) {
	if !t.enter(s, false) {
		s.Reset()
		return
	}
	defer t.leave(s)
	select {
	case t.streamCh <- &streamConn{Stream: s}:
	case <-t.ctx.Done():
		s.Reset()
	}
}

// packetSender owns the outbound packet stream to one peer.
type packetSender struct {
	t  *streamTransport
	id peer.ID
	q  chan []byte
}

func (s *packetSender) run() {
	defer s.t.wg.Done()
	var st network.Stream
	defer func() {
		if st != nil {
			st.Close()
		}
	}()
	idle := time.NewTimer(time.Minute)
	defer idle.Stop()
	for {
		var b []byte
		var ok bool
		select {
		case b, ok = <-s.q:
			if !ok {
				return
			}
		case <-idle.C:
			if s.retire() {
				return
			}
			idle.Reset(time.Minute)
			continue
		}
		idle.Reset(time.Minute)
		if st == nil {
			ctx, cancel := context.WithTimeout(s.t.ctx, s.t.timeout)
			var err error
			st, err = s.t.h.NewStream(network.WithAllowLimitedConn(ctx, "memberlist"), s.id, s.t.packetProto)
			cancel()
			if err != nil {
				st = nil
				continue // packet lost
			}
		}
		frame := make([]byte, 4+len(b))
		binary.BigEndian.PutUint32(frame, uint32(len(b)))
		copy(frame[4:], b)
		_ = st.SetWriteDeadline(time.Now().Add(s.t.timeout))
		if _, err := st.Write(frame); err != nil {
			st.Reset()
			st = nil
		}
	}
}

// retire removes an idle sender if nothing is queued; it reports whether the
// sender must stop.
func (s *packetSender) retire() bool {
	s.t.mu.Lock()
	defer s.t.mu.Unlock()
	if s.t.shut {
		return false // Shutdown closes q; run returns on it
	}
	if len(s.q) > 0 {
		return false
	}
	delete(s.t.out, s.id)
	return true
}

// peerAddr is a net.Addr naming a peer.
type peerAddr peer.ID

func (a peerAddr) Network() string { return "libp2p" }
func (a peerAddr) String() string  { return peer.ID(a).String() }

// streamConn adapts a libp2p stream to net.Conn for memberlist.
type streamConn struct{ network.Stream }

func (c *streamConn) LocalAddr() net.Addr  { return peerAddr(c.Conn().LocalPeer()) }
func (c *streamConn) RemoteAddr() net.Addr { return peerAddr(c.Conn().RemotePeer()) }
