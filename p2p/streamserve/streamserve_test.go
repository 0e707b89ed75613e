package streamserve

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

func newHost(t *testing.T) host.Host {
	t.Helper()
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// A peer holds at most perPeer streams at once: the next is refused (with
// refuse's reason) and reset; Close ends the ones being served and waits.
func TestPerPeerBoundAndClose(t *testing.T) {
	const proto = "/test/streamserve/1"
	srv, cli := newHost(t), newHost(t)
	serving := make(chan struct{}, 8)
	ended := make(chan struct{}, 8)
	s := New(srv, proto, 2, func(st network.Stream) { _, _ = st.Write([]byte("busy")) },
		func(ctx context.Context, st network.Stream) {
			serving <- struct{}{}
			<-ctx.Done() // held until Close
			ended <- struct{}{}
		})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := cli.Connect(ctx, peer.AddrInfo{ID: srv.ID(), Addrs: srv.Addrs()}); err != nil {
		t.Fatal(err)
	}
	var held []network.Stream
	for i := 0; i < 2; i++ {
		st, err := cli.NewStream(ctx, srv.ID(), proto)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.Write([]byte{0}); err != nil { // the handler runs once data arrives
			t.Fatal(err)
		}
		held = append(held, st)
		select {
		case <-serving:
		case <-ctx.Done():
			t.Fatalf("stream %d was not served", i)
		}
	}
	st, err := cli.NewStream(ctx, srv.ID(), proto)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = st.Write([]byte{0})
	// The refusal is written, then the stream reset: the reason may or may
	// not arrive before the reset, but the stream ends and is never served.
	b, err := io.ReadAll(st)
	if err == nil && string(b) != "busy" {
		t.Fatalf("a third stream of one peer read %q and ended cleanly, want the refusal or a reset", b)
	}
	select {
	case <-serving:
		t.Fatal("a third stream of one peer was served")
	default:
	}
	done := make(chan struct{})
	go func() { _ = s.Close(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		t.Fatal("Close did not return")
	}
	if len(ended) != 2 {
		t.Fatalf("%d of 2 served streams ended before Close returned", len(ended))
	}
	for _, st := range held {
		if _, err := st.Read(make([]byte, 1)); err == nil {
			t.Fatal("a served stream was still open after Close")
		}
	}
	_ = s.Close() // idempotent
}
