// Package ledgerapi is the ledger's part of the node's local HTTP API:
// the audit, entries, export, statements, proofs, heads, balances, grants
// and fencing epochs, over the node's *ledger.Ledger.
//
// Usage:
//
//	(&ledgerapi.Handlers{Ledger: l, PrivateGrid: grid != "", Log: log}).Routes(apiServer)
//
// Concurrency: the handlers are safe for concurrent use.
package ledgerapi

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/weftgrid/weft/cmd/weft/internal/api"
	"github.com/weftgrid/weft/ledger"
)

// Handlers serve the ledger's routes.
type Handlers struct {
	// Ledger is the node's ledger.
	Ledger *ledger.Ledger
	// PrivateGrid says whether the node is on a private grid (grants are
	// then the founder's and its named granters').
	PrivateGrid bool
	// Log receives the errors of streamed answers.
	Log *slog.Logger
}

// Routes registers the ledger's routes on srv.
func (h *Handlers) Routes(srv *api.Server) {
	srv.HandleFunc("GET /v1/ledger/audit", h.handleAudit)
	srv.HandleFunc("GET /v1/ledger/entries", h.handleEntries)
	srv.HandleFunc("GET /v1/ledger/export", h.handleExport)
	srv.HandleFunc("GET /v1/ledger/statement", h.handleStatement)
	srv.HandleFunc("GET /v1/ledger/proof/{cid}", h.handleProof)
	srv.HandleFunc("GET /v1/ledger/heads", h.handleHeads)
	srv.HandleFunc("GET /v1/ledger/balance", h.handleBalance)
	srv.HandleFunc("POST /v1/ledger/grants", h.HandleGrant)
	srv.HandleFunc("GET /v1/ledger/epochs/{instance}", h.handleEpoch)
}

func (h *Handlers) handleAudit(w http.ResponseWriter, r *http.Request) {
	api.WriteJSON(w, http.StatusOK, h.Ledger.Audit())
}

func (h *Handlers) handleEntries(w http.ResponseWriter, r *http.Request) {
	var kind ledger.Kind
	if k := r.URL.Query().Get("kind"); k != "" {
		var err error
		if kind, err = ledger.ParseKind(k); err != nil {
			api.WriteError(w, http.StatusBadRequest, err)
			return
		}
	}
	limit := 100
	if s := r.URL.Query().Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			api.WriteError(w, http.StatusBadRequest, fmt.Errorf("limit: %q", s))
			return
		}
		limit = n
	}
	out := []*ledger.Entry{}
	h.Ledger.View(func(s *ledger.Set) { out = ledger.Recent(s, kind, limit) })
	api.WriteJSON(w, http.StatusOK, out)
}

func (h *Handlers) handleExport(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/x-ndjson")
	if err := h.Ledger.Export(w); err != nil {
		h.Log.Warn("ledger: export", "err", err)
	}
}

func (h *Handlers) handleStatement(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	role, who := ledger.RoleRequester, q.Get("requester")
	if p := q.Get("provider"); p != "" {
		role, who = ledger.RoleProvider, p
	}
	if who == "" || (q.Get("provider") != "" && q.Get("requester") != "") {
		api.WriteError(w, http.StatusBadRequest, errors.New("give exactly one of requester= or provider="))
		return
	}
	p, err := peer.Decode(who)
	if err != nil {
		api.WriteError(w, http.StatusBadRequest, fmt.Errorf("peer ID %q: %w", who, err))
		return
	}
	var from, to time.Time
	var period time.Duration
	for k, dst := range map[string]*time.Time{"from": &from, "to": &to} {
		if s := q.Get(k); s != "" {
			if *dst, err = time.Parse(time.RFC3339, s); err != nil {
				api.WriteError(w, http.StatusBadRequest, fmt.Errorf("%s: %w", k, err))
				return
			}
		}
	}
	if s := q.Get("period"); s != "" {
		if period, err = time.ParseDuration(s); err != nil {
			api.WriteError(w, http.StatusBadRequest, fmt.Errorf("period: %w", err))
			return
		}
	}
	st := h.Ledger.Statement(role, p, from, to, period)
	if q.Get("format") == "csv" {
		w.Header().Set("Content-Type", "text/csv")
		_ = ledger.WriteCSV(w, st)
		return
	}
	api.WriteJSON(w, http.StatusOK, st)
}

func (h *Handlers) handleProof(w http.ResponseWriter, r *http.Request) {
	c, err := cid.Decode(r.PathValue("cid"))
	if err != nil {
		api.WriteError(w, http.StatusBadRequest, fmt.Errorf("cid: %w", err))
		return
	}
	p, err := h.Ledger.Prove(c)
	if errors.Is(err, ledger.ErrNotFound) {
		api.WriteError(w, http.StatusNotFound, err)
		return
	}
	if err != nil {
		api.WriteError(w, http.StatusInternalServerError, err)
		return
	}
	api.WriteJSON(w, http.StatusOK, p)
}

func (h *Handlers) handleHeads(w http.ResponseWriter, r *http.Request) {
	api.WriteJSON(w, http.StatusOK, api.LedgerHeads{Root: h.Ledger.RootHex(), Entries: h.Ledger.Len(), Heads: h.Ledger.Heads()})
}

func (h *Handlers) handleBalance(w http.ResponseWriter, r *http.Request) {
	if s := r.URL.Query().Get("peer"); s != "" {
		p, err := peer.Decode(s)
		if err != nil {
			api.WriteError(w, http.StatusBadRequest, fmt.Errorf("peer ID %q: %w", s, err))
			return
		}
		api.WriteJSON(w, http.StatusOK, []ledger.Balance{h.Ledger.Balance(p)})
		return
	}
	api.WriteJSON(w, http.StatusOK, h.Ledger.Balances())
}

// HandleGrant serves POST /v1/ledger/grants.
func (h *Handlers) HandleGrant(w http.ResponseWriter, r *http.Request) {
	var req api.Grant
	if err := api.DecodeJSON(r, &req); err != nil {
		api.WriteError(w, http.StatusBadRequest, err)
		return
	}
	to, err := peer.Decode(req.To)
	if err != nil {
		api.WriteError(w, http.StatusBadRequest, fmt.Errorf("to: peer ID %q: %w", req.To, err))
		return
	}
	if req.Amount == 0 {
		api.WriteError(w, http.StatusBadRequest, errors.New("amount must be a positive number of pico-credits (1 credit = 10^12)"))
		return
	}
	if !slices.Contains(h.Ledger.Granters(), h.Ledger.ID()) {
		why := "on the public grid only the peers in [ledger] granters may grant"
		if h.PrivateGrid {
			why = "on a private grid only its founder and the granters its grid file names may grant"
		}
		api.WriteError(w, http.StatusForbidden, fmt.Errorf("this node is not a granter: %s; its grant would count in no balance, so none was written", why))
		return
	}
	e, err := h.Ledger.Append(r.Context(), ledger.Grant{To: to, Amount: req.Amount, Memo: req.Memo})
	if errors.Is(err, ledger.ErrTooLarge) {
		api.WriteError(w, http.StatusBadRequest, fmt.Errorf("memo too long: %w", err))
		return
	}
	if err != nil {
		api.WriteError(w, http.StatusInternalServerError, err)
		return
	}
	api.WriteJSON(w, http.StatusOK, e)
}

// handleEpoch reports the latest contract epoch of an instance (fencing).
func (h *Handlers) handleEpoch(w http.ResponseWriter, r *http.Request) {
	inst := r.PathValue("instance")
	c, epoch, ok := h.Ledger.LatestEpoch(inst)
	if !ok {
		api.WriteError(w, http.StatusNotFound, fmt.Errorf("%w: no contract for instance %q", ledger.ErrNotFound, inst))
		return
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{"instance_id": inst, "epoch": epoch, "contract": c.String()})
}
