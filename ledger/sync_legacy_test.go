package ledger

import (
	"bufio"
	"context"
	"io"
	"net"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// legacyConn is one end of a pipe that negotiated SyncProtocolV1.
type legacyConn struct{ net.Conn }

func (legacyConn) Protocol() protocol.ID { return "/weft/public" + SyncProtocolV1 }

// legacyHead and legacyHello are the 1.0.0 hello, as a 1.0.0 node decodes
// it: with unknown fields refused (syncDec).
type legacyHead struct {
	Author peer.ID `cbor:"1,keyasint"`
	Contig uint64  `cbor:"2,keyasint"`
	Max    uint64  `cbor:"3,keyasint"`
	Count  uint64  `cbor:"4,keyasint"`
}

type legacyHello struct {
	_     struct{} `cbor:",toarray"`
	Root  []byte
	Heads []legacyHead
}

// Over a stream that negotiated 1.0.0, a node sends heads a 1.0.0 node can
// decode (no digests), and two replicas converge as before.
func TestSyncSpeaksV1WithOldNodes(t *testing.T) {
	ctx := context.Background()
	m := newMarket(t, 71)
	es := []*Entry{m.ce}
	for i := 0; i < 5; i++ {
		es = append(es, m.receipt(t, Usage{CPUMicros: 5}))
	}
	x, y := memLedger(t, nil), memLedger(t, nil)
	if _, err := x.Ingest(ctx, rawsOf(es)); err != nil {
		t.Fatal(err)
	}
	if _, err := y.Ingest(ctx, rawsOf(es[:2])); err != nil {
		t.Fatal(err)
	}

	// What x says first on a 1.0.0 stream decodes as 1.0.0.
	c1, c2 := net.Pipe()
	go func() { _, _ = x.Sync(ctx, legacyConn{c1}); c1.Close() }()
	b, err := readFrame(bufio.NewReader(c2))
	if err != nil {
		t.Fatal(err)
	}
	c2.Close()
	var old legacyHello
	if err := syncDec.Unmarshal(b, &old); err != nil {
		t.Fatalf("a 1.0.0 node cannot decode the hello sent on a 1.0.0 stream: %v", err)
	}
	if len(old.Heads) == 0 {
		t.Fatal("no heads in the hello")
	}

	// And an exchange over 1.0.0 streams converges.
	for i := 0; i < 2 && x.RootHex() != y.RootHex(); i++ {
		c1, c2 := net.Pipe()
		done := make(chan error, 1)
		go func() { _, err := y.ServeSync(ctx, legacyConn{c2}); c2.Close(); done <- err }()
		if _, err := x.Sync(ctx, legacyConn{c1}); err != nil && err != io.EOF {
			t.Fatal(err)
		}
		c1.Close()
		if err := <-done; err != nil && err != io.EOF {
			t.Fatal(err)
		}
	}
	if x.RootHex() != y.RootHex() {
		t.Fatalf("replicas differ after syncing over 1.0.0: %s vs %s", x.RootHex(), y.RootHex())
	}
}
