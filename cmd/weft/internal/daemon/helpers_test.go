package daemon

import (
	"log/slog"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/weftgrid/weft/cmd/weft/internal/api"
	"github.com/weftgrid/weft/cmd/weft/internal/config"
	"github.com/weftgrid/weft/partition"
)

// testEnv returns the env subsystems are built with for cfg, with its own
// API server and metrics, and the API token (kept in the data dir). It
// builds no subsystem: each test builds the ones it needs; their closers
// run when the test ends.
func testEnv(t testing.TB, cfg config.Config) (env, string) {
	t.Helper()
	d, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	token, err := api.LoadOrCreateToken(cfg.Node.DataDir)
	if err != nil {
		t.Fatal(err)
	}
	var cl closers
	t.Cleanup(func() {
		_ = cl.closeAll()
		// What the partitions made outside the data dir as root.
		_ = partition.RetireNode(cfg.Node.DataDir, cfg.Partitions.Count)
	})
	return env{cfg: d.cfg, log: slog.Default(), api: api.NewServer(token, nil), metrics: prometheus.NewRegistry(), onClose: cl.add}, token
}
