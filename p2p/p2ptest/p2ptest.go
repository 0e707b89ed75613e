// Package p2ptest starts real weft p2p nodes in one process on loopback, for
// tests of the p2p layer and of every subsystem built on it.
//
// Usage:
//
//	c := p2ptest.NewCluster(t, 5)            // 5 nodes, local preset, joined
//	c.WaitConverged(t, 10*time.Second)       // every node sees 5 alive
//	n := c.Nodes[0]                          // *p2p.Node
//	extra := p2ptest.NewNode(t, p2ptest.Bootstrap(n))
//
// Nodes listen on 127.0.0.1 TCP with ephemeral ports, use the local preset
// (with longer probe timeouts in a binary built with -race, which is ten
// times slower),
// and have mDNS, DHT rendezvous and NAT services off so that concurrently
// running tests never discover each other. Nodes are closed by t.Cleanup.
//
// Concurrency: helpers must be called from the test goroutine (they call
// t.Fatal); the nodes themselves are safe for concurrent use.
package p2ptest

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/weftgrid/weft/p2p"
)

// Option adjusts a node's configuration.
type Option func(*p2p.Config)

// Bootstrap makes the node join through the given nodes.
func Bootstrap(nodes ...*p2p.Node) Option {
	return func(c *p2p.Config) {
		for _, n := range nodes {
			for _, a := range n.Addrs() {
				c.Bootstrap = append(c.Bootstrap, a.String())
			}
		}
	}
}

// DataDir sets the node's data directory (to restart a node with the same
// identity).
func DataDir(dir string) Option { return func(c *p2p.Config) { c.DataDir = dir } }

// Grid puts the node on the private grid described by file.
func Grid(file string) Option { return func(c *p2p.Config) { c.GridFile = file } }

// Config returns the test configuration for a node in dir.
func Config(dir string) p2p.Config {
	c := p2p.DefaultConfig()
	c.DataDir = dir
	c.Listen = []string{"/ip4/127.0.0.1/tcp/0"}
	c.Preset = p2p.PresetLocal
	if raceDetector {
		// Ten times slower: probes get the time to answer, while the
		// local preset's 2 s state sync still repairs missed gossip fast.
		c.Tune = func(m *memberlist.Config) {
			m.ProbeInterval *= 3
			m.ProbeTimeout *= 5
			m.TCPTimeout *= 3
		}
	}
	c.MDNS = false
	c.DHTDiscovery = false
	c.NAT = false
	c.DiscoveryInterval = 500 * time.Millisecond
	c.Logger = Logger()
	return c
}

// Logger is a logger for test nodes: discarded unless WEFT_TEST_LOG is set
// (to "debug" for everything).
func Logger() *slog.Logger {
	lv := os.Getenv("WEFT_TEST_LOG")
	if lv == "" {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	level := slog.LevelInfo
	if lv == "debug" {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}

// Start starts a node; the caller closes it. It fails the test on error.
func Start(t testing.TB, opts ...Option) *p2p.Node {
	t.Helper()
	c := Config(t.TempDir())
	for _, o := range opts {
		o(&c)
	}
	n, err := p2p.New(context.Background(), c)
	if err != nil {
		t.Fatalf("p2ptest: start node: %v", err)
	}
	return n
}

// NewNode starts a node closed at the end of the test.
func NewNode(t testing.TB, opts ...Option) *p2p.Node {
	t.Helper()
	n := Start(t, opts...)
	t.Cleanup(func() { n.Close() })
	return n
}

// Cluster is a set of nodes joined through the first one.
type Cluster struct {
	// Nodes are the running nodes; Nodes[0] is the seed.
	Nodes []*p2p.Node
}

// NewCluster starts size nodes, each bootstrapping through the seed
// (Nodes[0]). Options apply to every node.
func NewCluster(t testing.TB, size int, opts ...Option) *Cluster {
	t.Helper()
	c := &Cluster{}
	seed := NewNode(t, opts...)
	c.Nodes = append(c.Nodes, seed)
	for i := 1; i < size; i++ {
		o := append([]Option{Bootstrap(seed)}, opts...)
		c.Nodes = append(c.Nodes, NewNode(t, o...))
	}
	return c
}

// WaitConverged waits until every node counts len(Nodes) alive members.
func (c *Cluster) WaitConverged(t testing.TB, timeout time.Duration) {
	t.Helper()
	WaitFor(t, timeout, func() error {
		for _, n := range c.Nodes {
			if got := n.AliveCount(); got != len(c.Nodes) {
				return fmt.Errorf("node %s sees %d alive of %d", n.ID().ShortString(), got, len(c.Nodes))
			}
		}
		return nil
	})
}

// StateOf returns the state n holds for p, and whether n knows p.
func StateOf(n *p2p.Node, p peer.ID) (p2p.MemberState, bool) {
	for _, m := range n.Members() {
		if m.ID == p {
			return m.State, true
		}
	}
	return 0, false
}

// WaitFor polls cond every 20 ms until it returns nil or timeout passes; then
// it fails the test with cond's last error.
func WaitFor(t testing.TB, timeout time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("p2ptest: condition not met within %v: %v", timeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
