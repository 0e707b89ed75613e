package logstream

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/weftgrid/weft/p2p/streamserve"
)

// Authorizer decides whether from may read the logs of instance.
type Authorizer func(ctx context.Context, from peer.ID, instance string) error

// Server serves the logs of the instances this node hosts.
type Server struct {
	*streamserve.Server
	src  Source
	auth Authorizer
	log  *slog.Logger
}

// NewServer registers the stream handler on h.
func NewServer(h host.Host, proto protocol.ID, src Source, auth Authorizer, log *slog.Logger) *Server {
	if log == nil {
		log = slog.Default()
	}
	s := &Server{src: src, auth: auth, log: log}
	s.Server = streamserve.New(h, proto, MaxPerPeer, func(st network.Stream) {
		_ = writeFrame(st, FrameError, []byte("too many log streams"))
	}, s.handle)
	return s
}

func (s *Server) handle(sctx context.Context, st network.Stream) {
	from := st.Conn().RemotePeer()
	_ = st.SetDeadline(time.Now().Add(RequestTimeout))
	req, err := ReadRequest(bufio.NewReaderSize(io.LimitReader(st, 1024), 1024))
	if err != nil {
		_ = st.Reset()
		return
	}
	ctx, cancel := context.WithCancel(sctx)
	defer cancel()
	actx, acancel := context.WithTimeout(ctx, RequestTimeout)
	err = s.auth(actx, from, req.Instance)
	acancel()
	if err != nil {
		s.log.Info("logs refused", "from", from.String(), "instance", req.Instance, "err", err)
		_ = writeFrame(st, FrameError, []byte(truncate(err.Error())))
		_ = st.Close()
		return
	}
	_ = st.SetReadDeadline(time.Time{})
	// The client half-closes after its request (EOF); a reset means it
	// went away: stop following. (A client that closes quietly is noticed
	// by the next write, at the latest the next keepalive's.)
	go func() {
		var b [1]byte
		if _, err := st.Read(b[:]); !errors.Is(err, io.EOF) {
			cancel()
		}
	}()
	err = Serve(ctx, s.src, req, st, func(t time.Time) { _ = st.SetWriteDeadline(t) })
	if err != nil {
		_ = st.Reset()
		return
	}
	_ = st.Close()
}

func truncate(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) > MaxReason {
		return s[:MaxReason]
	}
	return s
}

// Reader reads a log answer's frames.
type Reader struct {
	r     *bufio.Reader
	close func() error
}

// NewReader reads frames from r (close, if not nil, ends the stream).
func NewReader(r io.Reader, close func() error) *Reader {
	return &Reader{r: bufio.NewReaderSize(r, MaxFrame+16), close: close}
}

// Open asks to (the host) for req's logs and returns the answer's reader;
// the caller closes it. Opening the stream is bounded by RequestTimeout;
// the stream is reset when ctx ends.
func Open(ctx context.Context, h host.Host, to peer.ID, proto protocol.ID, req Request) (*Reader, error) {
	b, err := req.Encode()
	if err != nil {
		return nil, err
	}
	dctx, cancel := context.WithTimeout(ctx, RequestTimeout)
	defer cancel()
	st, err := h.NewStream(network.WithAllowLimitedConn(dctx, "logs"), to, proto)
	if err != nil {
		return nil, fmt.Errorf("logstream: stream to %s: %w", to, err)
	}
	_ = st.SetWriteDeadline(time.Now().Add(RequestTimeout))
	if _, err := st.Write(b); err != nil {
		_ = st.Reset()
		return nil, err
	}
	_ = st.CloseWrite()
	stop := context.AfterFunc(ctx, func() { _ = st.Reset() })
	return NewReader(st, func() error { stop(); return st.Close() }), nil
}

// Close ends the stream.
func (r *Reader) Close() error {
	if r.close == nil {
		return nil
	}
	return r.close()
}

// Next returns the next frame that carries something (log, data, end or
// error; keepalives are skipped). An error frame comes back as an error
// wrapping ErrRefused, a stream that ends before its end frame as
// ErrMalformed.
func (r *Reader) Next() (Frame, error) {
	for {
		f, err := ReadFrame(r.r)
		switch {
		case errors.Is(err, io.EOF):
			return f, fmt.Errorf("%w: the stream ended early", ErrMalformed)
		case err != nil:
			return f, err
		case f.Type == FrameError:
			return f, fmt.Errorf("%w: %s", ErrRefused, f.Payload)
		case f.Type != FrameKeepalive:
			return f, nil
		}
	}
}

// Copy writes the logs to w until the end frame, a "==> process <==" line
// before each process's lines. An error frame
// comes back as an error wrapping ErrRefused.
func (r *Reader) Copy(w io.Writer) error {
	cur := ""
	for {
		f, err := ReadFrame(r.r)
		if err != nil {
			if errors.Is(err, io.EOF) {
				return fmt.Errorf("%w: the stream ended early", ErrMalformed)
			}
			return err
		}
		switch f.Type {
		case FrameLog:
			name := string(f.Payload)
			if name != cur {
				if cur != "" {
					if _, err := io.WriteString(w, "\n"); err != nil {
						return err
					}
				}
				if _, err := fmt.Fprintf(w, "==> %s <==\n", name); err != nil {
					return err
				}
				cur = name
			}
		case FrameData:
			if _, err := w.Write(f.Payload); err != nil {
				return err
			}
			if fl, ok := w.(interface{ Flush() }); ok {
				fl.Flush()
			}
		case FrameEnd:
			return nil
		case FrameError:
			return fmt.Errorf("%w: %s", ErrRefused, f.Payload)
		case FrameKeepalive:
		}
	}
}
