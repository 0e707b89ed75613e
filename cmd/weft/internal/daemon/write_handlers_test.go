package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/weftgrid/weft/cmd/weft/internal/api"
	"github.com/weftgrid/weft/cmd/weft/internal/config"
	"github.com/weftgrid/weft/recipes"
)

// POST /v1/local/instances with a recipe_cid that is not a CID, or names
// a recipe neither local nor on the grid, is the caller's mistake: 400 and
// 404, not a 500 (the market's POST /v1/requests answers the same).
func TestLocalRunWithBadOrUnknownRecipeCIDIsAClientError(t *testing.T) {
	cfg := config.Default()
	cfg.Node.DataDir = t.TempDir()
	cfg.Partitions.Count = 1
	cfg.Partitions.PortBase = 41100
	cfg.Partitions.Users = false
	e, token := testEnv(t, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c, err := newRecipes(ctx, e, nil)
	if err != nil {
		t.Fatal(err)
	}
	parts, err := newPartitions(ctx, e, partitionDeps{Content: c})
	if err != nil {
		t.Fatal(err)
	}
	rc, err := recipes.Parse("r.toml", []byte(namedJobRecipe))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		cid  string
		want int
	}{
		{"not-a-cid", http.StatusBadRequest},
		{rc.CID().String(), http.StatusNotFound}, // never published here, no grid to fetch from
	} {
		b, _ := json.Marshal(api.LocalRun{ID: "x", RecipeCID: c.cid})
		req := httptest.NewRequest(http.MethodPost, "/v1/local/instances", bytes.NewReader(b))
		req.Header.Set("Authorization", "Bearer "+token)
		w := httptest.NewRecorder()
		e.api.ServeHTTP(w, req)
		if w.Code != c.want {
			t.Errorf("recipe_cid %q: HTTP %d %s, want %d", c.cid, w.Code, w.Body, c.want)
		}
	}
	if _, ok := parts.m.Get("x"); ok {
		t.Error("an instance was recorded for a recipe that was never found")
	}
}

// namedJobRecipe is a small batch recipe with one parameter.
const namedJobRecipe = `name = "report"
version = "1"
[params.month]
type = "string"
[types.default]
batch = true
[[types.default.processes]]
name = "main"
command = "/bin/true"
`
