package simnet_test

import (
	"slices"
	"testing"
	"testing/synctest"
	"time"
)

// TestHostedAccessEndsWithTheDelegation: who may open a tunnel to an
// instance's ports or read its logs is its requester and the guardians its
// request delegates to, while the delegation lasts: once it expires the
// guardians lose that access (the requester keeps it).
func TestHostedAccessEndsWithTheDelegation(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net, nodes := grid(t, 5, nil)
		req := nodes[0]
		s := spec("web", "guardians=2")
		s.DelegationTTL = 10 * time.Second
		v := placed(t, req.Market, s)
		host := net.Node(mustDecode(t, v.Node))
		requester, delegates, ok := host.Market.HostedAccess(t.Context(), v.InstanceID)
		if !ok || requester != req.ID || len(delegates) == 0 {
			t.Fatalf("access %s %v %v, want the requester and its guardians", requester, delegates, ok)
		}
		for _, g := range v.Guardians {
			if !slices.Contains(delegates, mustDecode(t, g)) {
				t.Fatalf("guardian %s has no access (%v)", g, delegates)
			}
		}
		time.Sleep(11 * time.Second) // virtual: the delegation expires
		requester, delegates, ok = host.Market.HostedAccess(t.Context(), v.InstanceID)
		if !ok || requester != req.ID || len(delegates) != 0 {
			t.Fatalf("after the delegation expired: %s %v %v, want the requester alone", requester, delegates, ok)
		}
	})
}
