package daemon

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/weftgrid/weft/cmd/weft/internal/config"
	"github.com/weftgrid/weft/cmd/weft/internal/content"
	"github.com/weftgrid/weft/p2p"
	"github.com/weftgrid/weft/partition"
	"github.com/weftgrid/weft/recipes"
)

// wiringNode starts the p2p, recipes and partitions subsystems of a daemon
// (what the market's backends come from), bootstrapping from boot.
func wiringNode(t *testing.T, ctx context.Context, boot string) wired {
	t.Helper()
	cfg := config.Default()
	cfg.Node.DataDir = t.TempDir()
	cfg.Node.Listen = []string{"/ip4/127.0.0.1/tcp/0"}
	cfg.Node.Preset = "local"
	cfg.Node.MDNS = "off"
	cfg.Node.DHTDiscovery = false
	cfg.Node.NAT = false
	if boot != "" {
		cfg.Node.Bootstrap = []string{boot}
	}
	cfg.Partitions.Count = 1
	cfg.Partitions.PortBase = 42000 + rand.IntN(1000)*10
	cfg.Partitions.Users = false
	e, _ := testEnv(t, cfg)
	n, err := newP2P(ctx, e)
	if err != nil {
		t.Fatal(err)
	}
	c, err := newRecipes(ctx, e, n.node)
	if err != nil {
		t.Fatal(err)
	}
	parts, err := newPartitions(ctx, e, partitionDeps{Node: n.node, Content: c})
	if err != nil {
		t.Fatal(err)
	}
	return wired{node: n.node, content: c, parts: parts.m}
}

// wired are the subsystems wiringNode built.
type wired struct {
	node    *p2p.Node
	content *content.Service
	parts   *partition.Manager
}

// TestMarketUsesTheDaemonsStoreAndTransfer checks that the market's
// content is the recipes subsystem's: one store (what the market fetches
// lands where `weft recipe show` looks) and one transfer service (the
// fetch goes through the daemon's protocol handler on both sides).
func TestMarketUsesTheDaemonsStoreAndTransfer(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a := wiringNode(t, ctx, "")
	b := wiringNode(t, ctx, a.node.Addrs()[0].String())
	if a.content.Transfer() == nil || b.content.Transfer() == nil {
		t.Fatal("no transfer service on a node with a p2p host")
	}

	parts, content, err := marketBackends(b.parts, b.content)
	if err != nil {
		t.Fatal(err)
	}
	if content.Store != b.content.Store {
		t.Fatal("the market has a content store of its own, not the daemon's")
	}
	if parts != b.parts {
		t.Fatal("the market runs instances elsewhere than the daemon's partitions")
	}

	r, err := recipes.Parse("wired.toml", []byte(`
name = "wired"
version = "1"
[types.default]
[[types.default.processes]]
name = "main"
command = "/bin/true"
`))
	if err != nil {
		t.Fatal(err)
	}
	c, err := a.content.Store.PutRecipe(r)
	if err != nil {
		t.Fatal(err)
	}
	if b.content.Store.Has(c) {
		t.Fatal("the recipe is on b before any fetch")
	}
	served, fetches := a.content.Transfer().Stats().BytesServed, b.content.Transfer().Stats().Fetches
	fctx, fcancel := context.WithTimeout(ctx, 30*time.Second)
	defer fcancel()
	var got *recipes.Recipe
	for {
		got, err = content.Recipe(fctx, c, a.node.ID())
		if err == nil || fctx.Err() != nil {
			break
		}
		time.Sleep(100 * time.Millisecond) // b may not be connected to a yet
	}
	if err != nil {
		t.Fatalf("market fetch of %s from %s: %v", c, a.node.ID(), err)
	}
	if got.Name != "wired" {
		t.Fatalf("fetched recipe %q", got.Name)
	}
	if !b.content.Store.Has(c) {
		t.Error("what the market fetched is not in the daemon's store")
	}
	if b.content.Transfer().Stats().Fetches <= fetches {
		t.Error("the market's fetch did not go through the daemon's transfer service")
	}
	if a.content.Transfer().Stats().BytesServed <= served {
		t.Error("the recipe was not served by the provider's transfer service")
	}
	if _, err := b.content.Recipe(ctx, c); err != nil {
		t.Errorf("the recipes subsystem does not see what the market fetched: %v", err)
	}
}
