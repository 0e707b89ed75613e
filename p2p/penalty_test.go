package p2p

import (
	"fmt"
	"testing"
	"time"
)

// A peer whose ban has expired and that keeps sending invalid messages must
// be banned again: the penalty count used to grow past the threshold and the
// ban fired only when it was exactly equal to it.
func TestPenaltyBansAgainAfterBanExpires(t *testing.T) {
	const threshold = 3
	n := startTestNode(t, func(c *Config) {
		c.PenaltyThreshold = threshold
		c.PenaltyBan = 200 * time.Millisecond
	})
	_, bad := testKey(t)
	for range threshold {
		n.penalise(bad, "test")
	}
	if n.gater.allowed(bad, false) {
		t.Fatal("peer not banned at the threshold")
	}
	waitFor(t, 10*time.Second, func() error {
		if !n.gater.allowed(bad, false) {
			return fmt.Errorf("ban not expired yet")
		}
		return nil
	})
	for range threshold {
		n.penalise(bad, "test")
	}
	if n.gater.allowed(bad, false) {
		t.Fatalf("peer kept sending invalid messages after its ban expired and was not banned again (penalty %d)", n.Penalty(bad))
	}
}

// Penalties decay: a peer with a few old rejections is not held to them
// forever (its gossipsub score used to stay at -10 per rejection for the
// lifetime of the node).
func TestPenaltiesDecay(t *testing.T) {
	n := startTestNode(t, func(c *Config) {
		c.PenaltyThreshold = 10
		c.PenaltyBan = 100 * time.Millisecond
	})
	_, p := testKey(t)
	n.penalise(p, "test")
	n.penalise(p, "test")
	if got := n.Penalty(p); got != 2 {
		t.Fatalf("penalty %d, want 2", got)
	}
	waitFor(t, 10*time.Second, func() error {
		if got, s := n.Penalty(p), n.appScore(p); got != 0 || s != 0 {
			return fmt.Errorf("penalty %d, app score %v: never decays", got, s)
		}
		return nil
	})
}
