package daemon

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/weftgrid/weft/cmd/weft/internal/api"
	"github.com/weftgrid/weft/cmd/weft/internal/config"
	"github.com/weftgrid/weft/cmd/weft/internal/dashboard"
	"github.com/weftgrid/weft/partition"
)

// TestRunWiresEverySubsystem runs a whole node through Run and reads, over
// its API socket with the typed client, every route the dashboard polls and
// the status sections of every subsystem; then it shuts the node down.
func TestRunWiresEverySubsystem(t *testing.T) {
	cfg := config.Default()
	cfg.Node.DataDir = t.TempDir()
	cfg.Node.API = "127.0.0.1:0"
	cfg.Node.Listen = []string{"/ip4/127.0.0.1/tcp/0"}
	cfg.Node.Preset = "local"
	cfg.Node.MDNS = "off"
	cfg.Node.DHTDiscovery = false
	cfg.Node.NAT = false
	cfg.Partitions.Count = 1
	cfg.Partitions.PortBase = 43000 + rand.IntN(1000)*10
	cfg.Partitions.Users = false
	d, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	// After Run returned: what the partitions made outside the data dir as root.
	t.Cleanup(func() { _ = partition.RetireNode(cfg.Node.DataDir, cfg.Partitions.Count) })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	var runErr error
	stopped := false
	stop := func() error { // cancels Run and waits for it, once
		if !stopped {
			stopped = true
			cancel()
			runErr = <-done
		}
		return runErr
	}
	defer stop()

	wctx, wcancel := context.WithTimeout(ctx, 30*time.Second)
	defer wcancel()
	var c *api.Client
	for c == nil {
		select {
		case err := <-done:
			stopped = true
			t.Fatalf("Run ended before the API answered: %v", err)
		case <-wctx.Done():
			t.Fatal("the API did not answer")
		case <-time.After(20 * time.Millisecond):
		}
		if cl, err := api.NewClientFromDataDir(cfg.Node.DataDir); err == nil && cl.WaitReady(wctx) == nil {
			c = cl
		}
	}
	for i, src := range dashboard.Sources {
		if _, err := src.Read(wctx, c); err != nil {
			t.Errorf("dashboard poll %d (%s): %v", i, src.Topic, err)
		}
	}
	st, err := c.Status(wctx)
	if err != nil {
		t.Fatal(err)
	}
	s := st.Value
	if s.PeerID == "" || len(s.Addrs) == 0 || s.Content == nil || s.Ledger == nil || s.Market == nil || s.Partitions == nil ||
		s.Partitions.Total != 1 || s.Limits["partitions"] == nil || s.Ledger.Slice != cfg.Ledger.SliceDuration().String() {
		t.Fatalf("status %s: a subsystem's section is missing", st.Raw)
	}
	if _, err := c.Grid(wctx); err != nil {
		t.Errorf("grid: %v", err)
	}
	if err := stop(); err != nil {
		t.Fatalf("Run at shutdown: %v", err)
	}
}
