package daemon

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/weftgrid/weft/cmd/weft/internal/config"
	"github.com/weftgrid/weft/ledger"
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
	d, token := newTestDaemon(t, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	defer d.closeAll()
	if err := d.startPartitions(ctx); err != nil {
		t.Fatal(err)
	}
	if err := d.startRecipes(ctx); err != nil {
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
		b, _ := json.Marshal(LocalRunRequest{ID: "x", RecipeCID: c.cid})
		req := httptest.NewRequest(http.MethodPost, "/v1/local/instances", bytes.NewReader(b))
		req.Header.Set("Authorization", "Bearer "+token)
		w := httptest.NewRecorder()
		d.api.ServeHTTP(w, req)
		if w.Code != c.want {
			t.Errorf("recipe_cid %q: HTTP %d %s, want %d", c.cid, w.Code, w.Body, c.want)
		}
	}
	if _, ok := d.parts.Get("x"); ok {
		t.Error("an instance was recorded for a recipe that was never found")
	}
}

// A grant whose memo makes the entry larger than a ledger entry may be is
// refused as a bad request, not answered 500, and nothing is appended.
func TestGrantWithOversizedMemoIsABadRequest(t *testing.T) {
	key, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ledger.NewSigner(key)
	if err != nil {
		t.Fatal(err)
	}
	lc := ledger.DefaultConfig(filepath.Join(t.TempDir(), config.LedgerFile))
	lc.Signer, lc.Granters = signer, []peer.ID{signer.ID()}
	l, err := ledger.Open(lc)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	otherKey, _, _ := crypto.GenerateEd25519Key(rand.Reader)
	to, _ := peer.IDFromPrivateKey(otherKey)
	d := &Daemon{cfg: config.Default(), log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	d.ledger = l

	grant := func(memo string) *httptest.ResponseRecorder {
		b, _ := json.Marshal(grantRequest{To: to.String(), Amount: 5, Memo: memo})
		w := httptest.NewRecorder()
		d.handleLedgerGrant(w, httptest.NewRequest(http.MethodPost, "/v1/ledger/grants", bytes.NewReader(b)))
		return w
	}
	if w := grant(strings.Repeat("m", ledger.MaxEntrySize)); w.Code != http.StatusBadRequest {
		t.Fatalf("oversized memo: HTTP %d %s, want 400", w.Code, w.Body)
	}
	if n := l.Len(); n != 0 {
		t.Fatalf("%d entries after a refused grant", n)
	}
	if w := grant("welcome"); w.Code != http.StatusOK {
		t.Fatalf("ordinary grant: HTTP %d %s", w.Code, w.Body)
	}
}

// On the public grid a node that is not among [ledger] granters (none by
// default) is refused a grant, with the reason, and writes nothing: its
// grant would count in no balance.
func TestGrantByANonGranterIsRefused(t *testing.T) {
	key, _, _ := crypto.GenerateEd25519Key(rand.Reader)
	signer, err := ledger.NewSigner(key)
	if err != nil {
		t.Fatal(err)
	}
	l, err := ledger.Open(ledger.Config{Signer: signer})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	d := &Daemon{cfg: config.Default(), log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	d.ledger = l
	b, _ := json.Marshal(grantRequest{To: signer.ID().String(), Amount: 999_999_999_999})
	w := httptest.NewRecorder()
	d.handleLedgerGrant(w, httptest.NewRequest(http.MethodPost, "/v1/ledger/grants", bytes.NewReader(b)))
	if w.Code != http.StatusForbidden || !strings.Contains(w.Body.String(), "not a granter") {
		t.Fatalf("self-grant by a stranger: HTTP %d %s, want 403", w.Code, w.Body)
	}
	if n := l.Len(); n != 0 {
		t.Fatalf("%d entries after a refused grant", n)
	}
	if bal := l.Balance(signer.ID()); bal.Balance != 0 {
		t.Fatalf("balance moved: %+v", bal)
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
