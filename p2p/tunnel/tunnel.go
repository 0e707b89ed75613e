// Package tunnel forwards TCP connections over libp2p streams: a client
// asks a peer for one of an instance's ports, the peer checks that the
// client may reach it (the instance's requester or one of its delegates)
// and pipes the stream to the port. The connection rides whatever path
// libp2p has to the peer: direct, hole-punched or relayed (a relayed
// connection is limited in time and bytes by its relay).
//
// # Usage
//
//	srv := tunnel.NewServer(h, prefix+tunnel.Protocol, authorize, log)
//	defer srv.Close()
//	s, err := tunnel.Open(ctx, h, host, prefix+tunnel.Protocol, tunnel.Request{Instance: id, Port: "http"})
//	err = tunnel.Pipe(localConn, s)
//
// # Wire
//
// One stream per forwarded connection. The client writes a request:
// uvarint length ‖ instance ID, uvarint length ‖ port name (each at most
// 256 bytes; an empty port name means the instance's only port). The
// server answers one byte (0 ok, 1 refused), uvarint length ‖ a one-line
// reason (at most 512 bytes, empty when ok); after ok, the stream carries
// the TCP connection's bytes both ways.
//
// # Concurrency
//
// A Server serves each stream in its own goroutine, at most MaxPerPeer at
// once per peer; Close resets the streams it serves and waits for them.
package tunnel

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/weftgrid/weft/p2p/streamserve"
)

// Protocol is the stream protocol (after the grid's prefix).
const Protocol = "/instance/connect/1"

// Limits.
const (
	// MaxField bounds the instance ID and the port name.
	MaxField = 256
	// MaxReason bounds a refusal's reason.
	MaxReason = 512
	// MaxPerPeer bounds the tunnels one peer has open at once.
	MaxPerPeer = 32
	// HandshakeTimeout bounds the request, the authorization, the dial of
	// the local port and the answer.
	HandshakeTimeout = 10 * time.Second
	// DirectDialTimeout bounds the attempt at a direct connection before a
	// tunnel rides a relayed one.
	DirectDialTimeout = 3 * time.Second
)

var (
	// ErrMalformed is returned for a request or answer that does not parse.
	ErrMalformed = errors.New("tunnel: malformed message")
	// ErrRefused wraps the reason a server refused a tunnel.
	ErrRefused = errors.New("tunnel: refused")
)

// Request names an instance's port.
type Request struct {
	// Instance is the instance ID.
	Instance string
	// Port is the recipe's port name ("" = the instance's only port).
	Port string
}

// Authorizer decides whether from may reach req, and returns the local
// host:port to connect the tunnel to.
type Authorizer func(ctx context.Context, from peer.ID, req Request) (addr string, err error)

func writeField(w io.Writer, s string, limit int) error {
	if len(s) > limit {
		return fmt.Errorf("%w: field of %d bytes", ErrMalformed, len(s))
	}
	var hdr [binary.MaxVarintLen64]byte
	n := binary.PutUvarint(hdr[:], uint64(len(s)))
	if _, err := w.Write(append(hdr[:n], s...)); err != nil {
		return err
	}
	return nil
}

// ByteReader is what the decoders read from (a *bufio.Reader, or an
// unbuffered Unbuffered that takes no byte past the message).
type ByteReader interface {
	io.Reader
	io.ByteReader
}

// Unbuffered reads one byte at a time from R, so that decoding a message
// consumes nothing after it.
type Unbuffered struct{ R io.Reader }

// Read reads from R.
func (u Unbuffered) Read(p []byte) (int, error) { return u.R.Read(p) }

// ReadByte reads one byte from R.
func (u Unbuffered) ReadByte() (byte, error) {
	var b [1]byte
	if _, err := io.ReadFull(u.R, b[:]); err != nil {
		return 0, err
	}
	return b[0], nil
}

func readField(r ByteReader, limit int) (string, error) {
	n, err := binary.ReadUvarint(r)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if n > uint64(limit) {
		return "", fmt.Errorf("%w: field of %d bytes (limit %d)", ErrMalformed, n, limit)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return "", fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	return string(b), nil
}

// WriteRequest writes req.
func WriteRequest(w io.Writer, req Request) error {
	if err := writeField(w, req.Instance, MaxField); err != nil {
		return err
	}
	return writeField(w, req.Port, MaxField)
}

// ReadRequest reads a request.
func ReadRequest(r ByteReader) (Request, error) {
	var req Request
	var err error
	if req.Instance, err = readField(r, MaxField); err != nil {
		return req, err
	}
	if req.Instance == "" {
		return req, fmt.Errorf("%w: no instance", ErrMalformed)
	}
	req.Port, err = readField(r, MaxField)
	return req, err
}

// WriteAnswer writes ok (refusal == nil) or the refusal's reason.
func WriteAnswer(w io.Writer, refusal error) error {
	if refusal == nil {
		_, err := w.Write([]byte{0, 0})
		return err
	}
	reason := refusal.Error()
	if len(reason) > MaxReason {
		reason = reason[:MaxReason]
	}
	if _, err := w.Write([]byte{1}); err != nil {
		return err
	}
	return writeField(w, reason, MaxReason)
}

// ReadAnswer reads an answer: nil for ok, an error wrapping ErrRefused
// with the server's reason otherwise.
func ReadAnswer(r ByteReader) error {
	st, err := r.ReadByte()
	if err != nil {
		return fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	reason, err := readField(r, MaxReason)
	if err != nil {
		return err
	}
	switch {
	case st == 0 && reason == "":
		return nil
	case st == 1:
		return fmt.Errorf("%w: %s", ErrRefused, reason)
	}
	return fmt.Errorf("%w: answer status %d", ErrMalformed, st)
}

// Server serves tunnels to local ports.
type Server struct {
	*streamserve.Server
	auth Authorizer
	log  *slog.Logger
}

// NewServer registers the stream handler on h.
func NewServer(h host.Host, proto protocol.ID, auth Authorizer, log *slog.Logger) *Server {
	s := &Server{auth: auth, log: log}
	s.Server = streamserve.New(h, proto, MaxPerPeer, func(st network.Stream) {
		_ = WriteAnswer(st, errors.New("too many tunnels"))
	}, s.handle)
	return s
}

func (s *Server) handle(sctx context.Context, st network.Stream) {
	from := st.Conn().RemotePeer()
	_ = st.SetDeadline(time.Now().Add(HandshakeTimeout))
	r := bufio.NewReader(st)
	req, err := ReadRequest(r)
	if err != nil {
		_ = st.Reset()
		return
	}
	ctx, cancel := context.WithTimeout(sctx, HandshakeTimeout)
	defer cancel()
	addr, err := s.auth(ctx, from, req)
	var conn net.Conn
	if err == nil {
		var d net.Dialer
		conn, err = d.DialContext(ctx, "tcp", addr)
	}
	if err != nil {
		s.log.Info("tunnel refused", "from", from.String(), "instance", req.Instance, "port", req.Port, "err", err)
		_ = WriteAnswer(st, err)
		_ = st.Close()
		return
	}
	defer conn.Close()
	if err := WriteAnswer(st, nil); err != nil {
		_ = st.Reset()
		return
	}
	_ = st.SetDeadline(time.Time{})
	s.log.Debug("tunnel open", "from", from.String(), "instance", req.Instance, "port", req.Port, "limited", st.Conn().Stat().Limited)
	_ = Pipe(conn, &bufferedStream{Stream: st, r: r})
}

// bufferedStream reads what the request's reader buffered first.
type bufferedStream struct {
	network.Stream
	r *bufio.Reader
}

func (b *bufferedStream) Read(p []byte) (int, error) { return b.r.Read(p) }

// Open asks peer to for a tunnel to req and returns the stream once the
// peer accepted. It prefers a direct connection: when the only one to the
// peer is relayed it rides it at once, and tries a direct one in the
// background (at most once per DirectRetry per peer), which the next
// tunnels use once it is up.
func Open(ctx context.Context, h host.Host, to peer.ID, proto protocol.ID, req Request) (network.Stream, error) {
	preferDirect(h, to)
	st, err := h.NewStream(network.WithAllowLimitedConn(ctx, "tunnel"), to, proto)
	if err != nil {
		return nil, fmt.Errorf("tunnel: stream to %s: %w", to, err)
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = st.SetDeadline(dl)
	} else {
		_ = st.SetDeadline(time.Now().Add(HandshakeTimeout))
	}
	if err := WriteRequest(st, req); err != nil {
		_ = st.Reset()
		return nil, err
	}
	if err := ReadAnswer(Unbuffered{st}); err != nil {
		_ = st.Reset()
		return nil, err
	}
	_ = st.SetDeadline(time.Time{})
	return st, nil
}

// DirectRetry is how often a tunnel's client tries a direct connection to
// a peer it reaches only through a relay.
const DirectRetry = 30 * time.Second

var (
	directMu   sync.Mutex
	directLast = map[peer.ID]time.Time{}
)

func preferDirect(h host.Host, p peer.ID) {
	conns := h.Network().ConnsToPeer(p)
	if len(conns) == 0 {
		return
	}
	for _, c := range conns {
		if !c.Stat().Limited {
			return
		}
	}
	directMu.Lock()
	if time.Since(directLast[p]) < DirectRetry {
		directMu.Unlock()
		return
	}
	if len(directLast) > 4096 {
		clear(directLast)
	}
	directLast[p] = time.Now()
	directMu.Unlock()
	go func() {
		ctx, cancel := context.WithTimeout(network.WithForceDirectDial(context.Background(), "tunnel"), DirectDialTimeout)
		defer cancel()
		_ = h.Connect(ctx, peer.AddrInfo{ID: p})
	}()
}

// halfCloser is a connection whose write side can be closed alone.
type halfCloser interface {
	CloseWrite() error
}

// Pipe copies a to b and b to a until both directions end (each side's
// write half is closed when its source ends), then closes both.
func Pipe(a, b io.ReadWriteCloser) error {
	var wg sync.WaitGroup
	errs := make([]error, 2)
	cp := func(i int, dst, src io.ReadWriteCloser) {
		defer wg.Done()
		_, errs[i] = io.Copy(dst, src)
		if hc, ok := dst.(halfCloser); ok {
			_ = hc.CloseWrite()
		} else {
			_ = dst.Close()
		}
	}
	wg.Add(2)
	go cp(0, a, b)
	go cp(1, b, a)
	wg.Wait()
	_ = a.Close()
	_ = b.Close()
	return errors.Join(errs...)
}
