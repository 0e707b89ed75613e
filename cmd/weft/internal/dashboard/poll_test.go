package dashboard

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/weftgrid/weft/cmd/weft/internal/api"
)

// TestSourceFetch: the poll reads routes through the API mux with the typed
// client and the token, drops volatile fields, and reports a missing route,
// a wrong token and an answer over the bound as errors.
func TestSourceFetch(t *testing.T) {
	token := strings.Repeat("ab", 16)
	srv := api.NewServer(token, nil)
	uptime := 1
	srv.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) {
		api.WriteJSON(w, 200, map[string]any{"peer_id": "p", "members": 2, "uptime_s": uptime})
	})
	c := api.NewHandlerClient(srv, token, 1<<20)
	status := Source{TopicPeers, answer((*api.Client).Status), []string{"uptime_s"}}
	fetch := status.Fetch(c)
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
	code := func(err error) int {
		var ae *api.Error
		if errors.As(err, &ae) {
			return ae.Status
		}
		return 0
	}
	auctions := Source{TopicAuctions, answer((*api.Client).Auctions), nil}
	if _, err := auctions.Fetch(c)(context.Background()); code(err) != http.StatusNotFound {
		t.Fatalf("missing route: err = %v, want a 404 error", err)
	}
	if _, err := status.Fetch(api.NewHandlerClient(srv, "wrong", 1<<20))(context.Background()); code(err) != http.StatusUnauthorized {
		t.Fatalf("wrong token: err = %v, want a 401 error", err)
	}
	if _, err := status.Fetch(api.NewHandlerClient(srv, token, 10))(context.Background()); !errors.Is(err, api.ErrAnswerTooLarge) {
		t.Fatalf("answer over the bound: err = %v, want ErrAnswerTooLarge", err)
	}
}
