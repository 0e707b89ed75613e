package dashboard

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/weftgrid/weft/cmd/weft/internal/api"
	"github.com/weftgrid/weft/scheduler"
)

// BenchmarkPollInstances measures one poll of GET /v1/instances with 100
// instances through the typed client (decoded, as the poll does) against
// the same read kept raw (the poll's cost before it used typed calls).
func BenchmarkPollInstances(b *testing.B) {
	token := strings.Repeat("ab", 16)
	srv := api.NewServer(token, nil)
	var views []scheduler.InstanceView
	for i := range 100 {
		views = append(views, scheduler.InstanceView{Name: fmt.Sprintf("web-%d", i), InstanceID: scheduler.InstanceID(fmt.Sprintf("%064d", i)),
			Node: "12D3KooWxyz", State: scheduler.StateStarted, Epoch: uint64(i), Connection: map[string]string{"url": "http://127.0.0.1:8080/"}})
	}
	srv.HandleFunc("GET /v1/instances", func(w http.ResponseWriter, r *http.Request) { api.WriteJSON(w, http.StatusOK, views) })
	c := api.NewHandlerClient(srv, token, 16<<20)
	ctx := context.Background()
	b.Run("typed", func(b *testing.B) {
		f := Source{TopicInstances, answer((*api.Client).Instances), []string{"updated_at"}}.Fetch(c)
		for b.Loop() {
			if _, err := f(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("raw", func(b *testing.B) {
		for b.Loop() {
			var raw json.RawMessage
			if err := c.Get(ctx, "/v1/instances", &raw); err != nil {
				b.Fatal(err)
			}
			_ = Fingerprint(raw, "updated_at")
		}
	})
}
