package daemon

import (
	"testing"

	"github.com/weftgrid/weft/cmd/weft/internal/api"
	"github.com/weftgrid/weft/cmd/weft/internal/config"
)

// newTestDaemon builds a daemon for cfg with its API server and returns it
// with the API token (kept in the data dir). It starts no subsystem: each
// test starts the ones it needs.
func newTestDaemon(t testing.TB, cfg config.Config) (*Daemon, string) {
	t.Helper()
	d, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	token, err := api.LoadOrCreateToken(cfg.Node.DataDir)
	if err != nil {
		t.Fatal(err)
	}
	d.api = api.NewServer(token, nil)
	return d, token
}
