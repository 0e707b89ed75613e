package simnet_test

import (
	"context"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/weftgrid/weft/scheduler"
	"github.com/weftgrid/weft/scheduler/simnet"
)

const recipeCID = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"

func spec(name string, sla ...string) scheduler.RequestSpec {
	s := scheduler.RequestSpec{Name: name, RecipeCID: recipeCID,
		Resources: scheduler.Resources{CPUMillis: 500, MemoryBytes: 256 << 20, DiskBytes: 1 << 30}}
	if err := scheduler.ApplySLA(&s, sla); err != nil {
		panic(err)
	}
	return s
}

func grid(t *testing.T, n int, opts func(i int) simnet.NodeOptions) (*simnet.Network, []*simnet.Node) {
	t.Helper()
	net := simnet.New(simnet.Options{Seed: 7})
	nodes, err := net.AddNodes(t.Context(), n, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(net.Close)
	return net, nodes
}

// waitFor waits (in virtual time under synctest) until cond holds.
func waitFor(t *testing.T, what string, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", within, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// placed requests spec on m and waits until it reached its state.
func placed(t *testing.T, m *scheduler.Market, s scheduler.RequestSpec) scheduler.InstanceView {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if _, err := m.Request(ctx, s); err != nil {
		t.Fatalf("request %s: %v", s.Name, err)
	}
	v, err := m.Wait(ctx, s.Name, func(v scheduler.InstanceView) bool { ok, _ := scheduler.Reached(v); return ok })
	if err != nil {
		t.Fatalf("wait %s: %v (last view %+v)", s.Name, err, v)
	}
	if _, err := scheduler.Reached(v); err != nil {
		t.Fatalf("%s: %v", s.Name, err)
	}
	return v
}

func mustDecodeB(b *testing.B, s string) peer.ID {
	id, err := peer.Decode(s)
	if err != nil {
		b.Fatal(err)
	}
	return id
}
