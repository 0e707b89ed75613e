package ledgerp2p

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/weftgrid/weft/ledger"
)

// testNode is a minimal p2p node: a loopback libp2p host with gossipsub.
type testNode struct {
	h    host.Host
	ps   *pubsub.PubSub
	priv crypto.PrivKey
}

func (n *testNode) Host() host.Host             { return n.h }
func (n *testNode) ProtocolPrefix() protocol.ID { return "/weft-test" }
func (n *testNode) JoinTopic(name string, v pubsub.ValidatorEx, maxSize int) (*pubsub.Topic, error) {
	full := "/weft-test/topic/" + name
	if err := n.ps.RegisterTopicValidator(full, v); err != nil {
		return nil, err
	}
	return n.ps.Join(full)
}

func newTestNode(t *testing.T, ctx context.Context) *testNode {
	t.Helper()
	priv, _, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		t.Fatal(err)
	}
	h, err := libp2p.New(libp2p.Identity(priv), libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableRelay())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	ps, err := pubsub.NewGossipSub(ctx, h, pubsub.WithMessageSignaturePolicy(pubsub.StrictSign))
	if err != nil {
		t.Fatal(err)
	}
	return &testNode{h: h, ps: ps, priv: priv}
}

type replica struct {
	n *testNode
	l *ledger.Ledger
	a *Adapter
}

func newReplica(t *testing.T, ctx context.Context) *replica {
	n := newTestNode(t, ctx)
	s, err := ledger.NewSigner(n.priv)
	if err != nil {
		t.Fatal(err)
	}
	l, err := ledger.Open(ledger.Config{Signer: s})
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(ctx, l, n, Config{Sync: ledger.SyncConfig{Interval: 100 * time.Millisecond, Timeout: 10 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close(); l.Close() })
	return &replica{n, l, a}
}

func connect(t *testing.T, ctx context.Context, a, b *replica) {
	t.Helper()
	if err := a.n.h.Connect(ctx, peer.AddrInfo{ID: b.n.h.ID(), Addrs: b.n.h.Addrs()}); err != nil {
		t.Fatal(err)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestGossipAndAntiEntropyOverLibp2p(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a, b, c := newReplica(t, ctx), newReplica(t, ctx), newReplica(t, ctx)
	// c writes while disconnected from everyone.
	for i := 0; i < 20; i++ {
		if _, err := c.l.Append(ctx, ledger.Grant{To: c.n.h.ID(), Amount: uint64(i)}); err != nil {
			t.Fatal(err)
		}
	}
	connect(t, ctx, a, b)
	// Gossip (or anti-entropy, whichever is first) carries a's new entries to b.
	e, err := a.l.Append(ctx, ledger.Grant{To: b.n.h.ID(), Amount: 7})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "b holds a's entry", func() bool { _, ok := b.l.Get(e.CID()); return ok })
	// c connects to b only: the sync on connect and anti-entropy spread c's log.
	connect(t, ctx, c, b)
	waitFor(t, "three replicas converge", func() bool {
		return a.l.Len() == 21 && bytes.Equal(a.l.Root(), b.l.Root()) && bytes.Equal(b.l.Root(), c.l.Root())
	})
	// Invalid bytes are refused by the validator (here already at the publisher).
	if err := b.a.topic.Publish(ctx, []byte("not an entry")); err == nil {
		t.Fatal("invalid entry published")
	}
	e2, err := b.l.Append(ctx, ledger.Grant{To: a.n.h.ID(), Amount: 1})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a holds b's later entry", func() bool { _, ok := a.l.Get(e2.CID()); return ok })
	if a.l.Len() != 22 {
		t.Fatalf("a holds %d entries, want 22", a.l.Len())
	}
	if r := a.l.Audit(); !r.OK {
		t.Fatalf("audit: %+v", r.Problems)
	}
}

func TestValidatorRejectsBadEntriesFromPeers(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a, b := newReplica(t, ctx), newReplica(t, ctx)
	e, err := b.l.Append(ctx, ledger.Grant{To: b.n.h.ID(), Amount: 3})
	if err != nil {
		t.Fatal(err)
	}
	msg := func(data []byte) *pubsub.Message { return &pubsub.Message{Message: &pb.Message{Data: data}} }
	from := b.n.h.ID()
	tampered := append([]byte(nil), e.Bytes()...)
	tampered[len(tampered)-1] ^= 1
	for name, data := range map[string][]byte{"garbage": []byte("x"), "tampered": tampered, "empty": nil} {
		if r := a.a.validate(ctx, from, msg(data)); r != pubsub.ValidationReject {
			t.Errorf("%s: %v, want reject", name, r)
		}
	}
	m := msg(e.Bytes())
	if r := a.a.validate(ctx, from, m); r != pubsub.ValidationAccept || m.ValidatorData == nil {
		t.Fatalf("valid entry: %v", r)
	}
	if _, err := a.l.AddVerified(ctx, []*ledger.Entry{m.ValidatorData.(*ledger.Entry)}); err != nil {
		t.Fatal(err)
	}
	if r := a.a.validate(ctx, from, msg(e.Bytes())); r != pubsub.ValidationIgnore {
		t.Fatalf("known entry: %v, want ignore", r)
	}
}
