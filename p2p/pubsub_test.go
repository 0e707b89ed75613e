package p2p_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/weftgrid/weft/p2p"
	"github.com/weftgrid/weft/p2p/p2ptest"
)

// jsonOnly accepts messages whose data is a JSON object.
func jsonOnly(_ context.Context, _ peer.ID, m *pubsub.Message) pubsub.ValidationResult {
	var v map[string]any
	if json.Unmarshal(m.Data, &v) != nil {
		return pubsub.ValidationReject
	}
	return pubsub.ValidationAccept
}

func TestPubsubRejectsAndPenalisesBadSenders(t *testing.T) {
	const threshold = 6
	lowThreshold := func(c *p2p.Config) { c.PenaltyThreshold = threshold }
	victim := p2ptest.NewNode(t, lowThreshold)
	honest := p2ptest.NewNode(t, lowThreshold, p2ptest.Bootstrap(victim))
	attacker := p2ptest.NewNode(t, p2ptest.Bootstrap(victim))

	vt, err := victim.JoinTopic("requests", jsonOnly, 1024)
	if err != nil {
		t.Fatal(err)
	}
	sub, err := vt.Subscribe()
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Cancel()
	ht, err := honest.JoinTopic("requests", jsonOnly, 1024)
	if err != nil {
		t.Fatal(err)
	}
	// The attacker joins the same topic with no validator of its own.
	at, err := attacker.PubSub().Join(victim.TopicName("requests"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := victim.JoinTopic("nil-validator", nil, 0); err == nil {
		t.Fatal("a topic without validator was joined")
	}
	p2ptest.WaitFor(t, 10*time.Second, func() error {
		if !slices.Contains(at.ListPeers(), victim.ID()) || !slices.Contains(ht.ListPeers(), victim.ID()) {
			return fmt.Errorf("victim not yet seen on the topic")
		}
		return nil
	})

	ctx := context.Background()
	bad := [][]byte{[]byte("not json"), {0xff, 0x00, 0x13}, bytes.Repeat([]byte(`{"a":1}`), 400)}
	for i := 0; victim.Penalty(attacker.ID()) < threshold && i < 200; i++ {
		_ = at.Publish(ctx, bad[i%len(bad)])
		time.Sleep(10 * time.Millisecond) // pace the flood; the condition is the penalty count
	}
	if got := victim.Penalty(attacker.ID()); got < threshold {
		t.Fatalf("attacker penalty %d after the flood, want >= %d", got, threshold)
	}
	// The attacker is disconnected and refused.
	p2ptest.WaitFor(t, 10*time.Second, func() error {
		if slices.Contains(victim.ConnectedPeers(), attacker.ID()) {
			return fmt.Errorf("attacker still connected")
		}
		return nil
	})
	cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	_ = attacker.Host().Connect(cctx, victim.AddrInfo())
	p2ptest.WaitFor(t, 5*time.Second, func() error {
		if slices.Contains(victim.ConnectedPeers(), attacker.ID()) {
			return fmt.Errorf("banned attacker reconnected")
		}
		return nil
	})

	// The victim keeps working: a valid message from an honest peer arrives,
	// and no invalid one was ever delivered.
	if err := ht.Publish(ctx, []byte(`{"ok":true}`)); err != nil {
		t.Fatal(err)
	}
	rctx, rcancel := context.WithTimeout(ctx, 10*time.Second)
	defer rcancel()
	for {
		m, err := sub.Next(rctx)
		if err != nil {
			t.Fatalf("honest message not delivered: %v", err)
		}
		if jsonOnly(ctx, "", m) != pubsub.ValidationAccept || len(m.Data) > 1024 {
			t.Fatalf("an invalid message was delivered: %q", m.Data)
		}
		if m.GetFrom() == honest.ID() {
			break
		}
	}
	if honest.Penalty(victim.ID()) != 0 || victim.Penalty(honest.ID()) != 0 {
		t.Fatal("honest peers were penalised")
	}
}
