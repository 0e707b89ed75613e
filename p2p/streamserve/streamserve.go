// Package streamserve runs a libp2p stream protocol's handler with what
// every server of a long-lived stream needs: a bound on the streams one
// peer may hold open at once (a peer cannot exhaust the node with idle
// streams), and a Close that removes the handler, resets the streams in
// progress and waits for their handlers.
//
// Usage:
//
//	s := streamserve.New(h, proto, 4, refuse, serve)
//	defer s.Close()
//
// Concurrency: serve runs on the stream's own goroutine; New and Close may
// be called from any goroutine, Close more than once.
package streamserve

import (
	"context"
	"sync"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// Server is one protocol's stream handler, bounded per peer.
type Server struct {
	h       host.Host
	proto   protocol.ID
	perPeer int
	refuse  func(network.Stream)
	serve   func(ctx context.Context, st network.Stream)

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	open   map[peer.ID]int
	once   sync.Once
}

// New registers the handler of proto on h. A stream beyond perPeer open
// ones from the same peer (or one arriving while the server closes) is
// given to refuse, which may write a reason, and then reset. Every other
// stream is given to serve with a context that ends at Close, when the
// stream is also reset.
func New(h host.Host, proto protocol.ID, perPeer int, refuse func(network.Stream), serve func(ctx context.Context, st network.Stream)) *Server {
	s := &Server{h: h, proto: proto, perPeer: perPeer, refuse: refuse, serve: serve, open: map[peer.ID]int{}}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	h.SetStreamHandler(proto, s.handle)
	return s
}

// Close removes the handler, ends the streams and waits for their
// handlers. Idempotent.
func (s *Server) Close() error {
	s.once.Do(func() {
		s.h.RemoveStreamHandler(s.proto)
		s.cancel()
		s.wg.Wait()
	})
	return nil
}

func (s *Server) enter(p peer.ID) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ctx.Err() != nil || s.open[p] >= s.perPeer {
		return false
	}
	s.open[p]++
	s.wg.Add(1)
	return true
}

func (s *Server) leave(p peer.ID) {
	s.mu.Lock()
	if s.open[p]--; s.open[p] <= 0 {
		delete(s.open, p)
	}
	s.mu.Unlock()
	s.wg.Done()
}

func (s *Server) handle(st network.Stream) {
	from := st.Conn().RemotePeer()
	if !s.enter(from) {
		if s.refuse != nil {
			s.refuse(st)
		}
		_ = st.Reset()
		return
	}
	defer s.leave(from)
	stop := context.AfterFunc(s.ctx, func() { _ = st.Reset() })
	defer stop()
	s.serve(s.ctx, st)
}
