package ledgerapi

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/weftgrid/weft/cmd/weft/internal/api"
	"github.com/weftgrid/weft/ledger"
)

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
	lc := ledger.DefaultConfig(filepath.Join(t.TempDir(), "ledger.db"))
	lc.Signer, lc.Granters = signer, []peer.ID{signer.ID()}
	l, err := ledger.Open(lc)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	otherKey, _, _ := crypto.GenerateEd25519Key(rand.Reader)
	to, _ := peer.IDFromPrivateKey(otherKey)
	h := &Handlers{Ledger: l}

	grant := func(memo string) *httptest.ResponseRecorder {
		b, _ := json.Marshal(api.Grant{To: to.String(), Amount: 5, Memo: memo})
		w := httptest.NewRecorder()
		h.HandleGrant(w, httptest.NewRequest(http.MethodPost, "/v1/ledger/grants", bytes.NewReader(b)))
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
	h := &Handlers{Ledger: l}
	b, _ := json.Marshal(api.Grant{To: signer.ID().String(), Amount: 999_999_999_999})
	w := httptest.NewRecorder()
	h.HandleGrant(w, httptest.NewRequest(http.MethodPost, "/v1/ledger/grants", bytes.NewReader(b)))
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
