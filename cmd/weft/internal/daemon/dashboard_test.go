package daemon

import (
	"context"
	"errors"
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

// TestSnapshot: the poll reads routes through the API mux with the typed
// client and the token, drops volatile fields, and reports a missing route,
// a wrong token and an answer over the bound as errors.
func TestSnapshot(t *testing.T) {
	cfg := config.Default()
	cfg.Node.DataDir = t.TempDir()
	e, token := testEnv(t, cfg)
	uptime := 1
	e.api.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) {
		api.WriteJSON(w, 200, map[string]any{"peer_id": "p", "members": 2, "uptime_s": uptime})
	})
	c := api.NewHandlerClient(e.api, token, maxSnapshotBytes)
	fetch := snapshot(c, raw((*api.Client).Status), []string{"uptime_s"})
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
	status := func(err error) int {
		var ae *api.Error
		if errors.As(err, &ae) {
			return ae.Status
		}
		return 0
	}
	if _, err := snapshot(c, raw((*api.Client).Auctions), nil)(context.Background()); status(err) != http.StatusNotFound {
		t.Fatalf("missing route: err = %v, want a 404 error", err)
	}
	wrong := api.NewHandlerClient(e.api, "wrong", maxSnapshotBytes)
	if _, err := snapshot(wrong, raw((*api.Client).Status), nil)(context.Background()); status(err) != http.StatusUnauthorized {
		t.Fatalf("wrong token: err = %v, want a 401 error", err)
	}
	small := api.NewHandlerClient(e.api, token, 10)
	if _, err := snapshot(small, raw((*api.Client).Status), nil)(context.Background()); !errors.Is(err, api.ErrAnswerTooLarge) {
		t.Fatalf("answer over the bound: err = %v, want ErrAnswerTooLarge", err)
	}
}
