package p2p

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"
)

// startTestNode starts a lone node on loopback with the local preset,
// adjusted by mod, and closes it at the end of the test.
func startTestNode(t *testing.T, mod func(*Config)) *Node {
	t.Helper()
	c := DefaultConfig()
	c.DataDir = t.TempDir()
	c.Listen = []string{"/ip4/127.0.0.1/tcp/0"}
	c.Preset = PresetLocal
	c.MDNS, c.DHTDiscovery, c.NAT = false, false, false
	c.DiscoveryInterval = 300 * time.Millisecond
	c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	if mod != nil {
		mod(&c)
	}
	n, err := New(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}
