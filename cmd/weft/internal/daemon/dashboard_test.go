package daemon

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/weftgrid/weft/cmd/weft/internal/api"
	"github.com/weftgrid/weft/cmd/weft/internal/config"
	"github.com/weftgrid/weft/cmd/weft/internal/dashboard"
)

// TestNotifyBeforeStart: subsystems start before the dashboard and may
// notify at once; that must neither panic nor block.
func TestNotifyBeforeStart(t *testing.T) {
	cfg := config.Default()
	cfg.Node.DataDir = t.TempDir()
	e, _ := testEnv(t, cfg)
	d := newDashboard(e)
	for _, topic := range dashboard.Topics {
		d.notify(topic)
	}
}

// TestSnapshot: the poll reads routes through the API mux with the token,
// drops volatile fields, and reports a missing route as an error.
func TestSnapshot(t *testing.T) {
	cfg := config.Default()
	cfg.Node.DataDir = t.TempDir()
	e, token := testEnv(t, cfg)
	d := newDashboard(e)
	uptime := 1
	e.api.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) {
		api.WriteJSON(w, 200, map[string]any{"peer_id": "p", "members": 2, "uptime_s": uptime})
	})
	fetch := d.snapshot(token, "/v1/status", []string{"uptime_s"})
	a, err := fetch(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	uptime = 2
	b, err := fetch(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if string(a) != string(b) || strings.Contains(string(a), "uptime") || !strings.Contains(string(a), `"members":2`) {
		t.Fatalf("snapshots %s and %s: want equal, without uptime_s", a, b)
	}
	if _, err := d.snapshot(token, "/v1/auctions", nil)(context.Background()); err == nil || !strings.Contains(err.Error(), "404") {
		t.Fatalf("missing route: err = %v, want a 404 error", err)
	}
	if _, err := d.snapshot("wrong", "/v1/status", nil)(context.Background()); err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("wrong token: err = %v, want a 401 error", err)
	}
}
