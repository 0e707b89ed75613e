package daemon

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/weftgrid/weft/cmd/weft/internal/api"
	"github.com/weftgrid/weft/cmd/weft/internal/config"
	"github.com/weftgrid/weft/ledger"
	"github.com/weftgrid/weft/ledger/ledgerp2p"
	"github.com/weftgrid/weft/ledger/settle"
	"github.com/weftgrid/weft/p2p"
	"github.com/weftgrid/weft/p2p/grid"
)

// ledgerState is the ledger subsystem's part of the Daemon.
//
// For the market: settle.Recorder and settle.Balances over d.ledger record
// contracts and give balances, d.ledgerLatestEpoch gives the fencing epoch
// of an instance, d.ledgerSlice the grid's slice length. The billing loop
// (d.biller) is the bridge built after both the ledger and the market
// (startBilling).
type ledgerState struct {
	ledger       *ledger.Ledger
	ledgerNet    *ledgerp2p.Adapter
	biller       *ledger.Biller
	checkpointer *ledger.Checkpointer
}

// startLedger opens the ledger, joins its topic and anti-entropy when the
// p2p node runs, starts the checkpoints and registers the API routes. The
// billing loop starts later (startBilling).
func (d *Daemon) startLedger(ctx context.Context) error {
	var signer *ledger.Signer
	if d.node != nil {
		s, err := ledger.NewSigner(d.node.PrivKey())
		if err != nil {
			return err
		}
		signer = s
	}
	granters, err := ledgerGranters(d.cfg)
	if err != nil {
		return err
	}
	cfg := ledger.DefaultConfig(filepath.Join(d.cfg.Node.DataDir, config.LedgerFile))
	cfg.Signer, cfg.Log, cfg.Granters = signer, d.log.With("subsystem", "ledger"), granters
	cfg.ContractCheck = settle.CheckContract
	l, err := ledger.Open(cfg)
	if err != nil {
		return err
	}
	d.ledger = l
	d.onClose(l.Close)
	if d.node != nil {
		sc := ledger.DefaultSyncConfig()
		sc.Interval = d.cfg.Ledger.AntiEntropyDuration()
		a, err := ledgerp2p.New(ctx, l, d.node, ledgerp2p.Config{Sync: sc, Log: cfg.Log})
		if err != nil {
			return err
		}
		d.ledgerNet = a
		d.onClose(a.Close)
	}
	d.checkpointer = ledger.NewCheckpointer(l, d.cfg.Ledger.CheckpointInterval())
	if signer != nil {
		d.checkpointer.Start(ctx)
	}
	d.onClose(d.checkpointer.Close)

	d.api.HandleFunc("GET /v1/ledger/audit", d.handleLedgerAudit)
	d.api.HandleFunc("GET /v1/ledger/entries", d.handleLedgerEntries)
	d.api.HandleFunc("GET /v1/ledger/export", d.handleLedgerExport)
	d.api.HandleFunc("GET /v1/ledger/statement", d.handleLedgerStatement)
	d.api.HandleFunc("GET /v1/ledger/proof/{cid}", d.handleLedgerProof)
	d.api.HandleFunc("GET /v1/ledger/heads", d.handleLedgerHeads)
	d.api.HandleFunc("GET /v1/ledger/balance", d.handleLedgerBalance)
	d.api.HandleFunc("POST /v1/ledger/grants", d.handleLedgerGrant)
	d.api.HandleFunc("GET /v1/ledger/epochs/{instance}", d.handleLedgerEpoch)
	d.statusExtras = append(d.statusExtras, func(m map[string]any) {
		m["ledger"] = map[string]any{"entries": l.Len(), "root": l.RootHex(), "slice": d.ledgerSlice().String()}
	})
	return nil
}

// startBilling starts the ledger's billing loop: the bridge between the
// ledger and the market, built after both (and after the partitions, whose
// metering it bills). As a provider it bills each slice of the instances
// this node hosts from the partitions' usage; as a requester it
// acknowledges or disputes receipts by the market's view of the instance
// and the membership (settle.Reach).
func (d *Daemon) startBilling(ctx context.Context) error {
	reach := settle.Reach{Instances: d.market.Instances, Alive: func() map[peer.ID]bool {
		alive := map[peer.ID]bool{}
		for _, mem := range d.node.Members() {
			if mem.State == p2p.StateAlive {
				alive[mem.ID] = true
			}
		}
		return alive
	}, SliceHealth: d.market.SliceHealth}
	d.biller = ledger.NewBiller(d.ledger, partitionUsage{d.parts}, reach, settle.BillerConfig(d.ledgerNet != nil, d.ledgerSlice()))
	d.biller.Start(ctx)
	d.onClose(d.biller.Close)
	return nil
}

// ledgerSlice is the grid's slice length ([ledger] slice, --slice).
func (d *Daemon) ledgerSlice() time.Duration { return d.cfg.Ledger.SliceDuration() }

// ledgerLatestEpoch returns the highest contract epoch known for instance.
func (d *Daemon) ledgerLatestEpoch(instance string) (cid.Cid, uint64, bool) {
	if d.ledger == nil {
		return cid.Undef, 0, false
	}
	return d.ledger.LatestEpoch(instance)
}

func (d *Daemon) handleLedgerAudit(w http.ResponseWriter, r *http.Request) {
	api.WriteJSON(w, http.StatusOK, d.ledger.Audit())
}

func (d *Daemon) handleLedgerEntries(w http.ResponseWriter, r *http.Request) {
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
	d.ledger.View(func(s *ledger.Set) { out = ledger.Recent(s, kind, limit) })
	api.WriteJSON(w, http.StatusOK, out)
}

func (d *Daemon) handleLedgerExport(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/x-ndjson")
	if err := d.ledger.Export(w); err != nil {
		d.log.Warn("ledger: export", "err", err)
	}
}

func (d *Daemon) handleLedgerStatement(w http.ResponseWriter, r *http.Request) {
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
	st := d.ledger.Statement(role, p, from, to, period)
	if q.Get("format") == "csv" {
		w.Header().Set("Content-Type", "text/csv")
		_ = ledger.WriteCSV(w, st)
		return
	}
	api.WriteJSON(w, http.StatusOK, st)
}

func (d *Daemon) handleLedgerProof(w http.ResponseWriter, r *http.Request) {
	c, err := cid.Decode(r.PathValue("cid"))
	if err != nil {
		api.WriteError(w, http.StatusBadRequest, fmt.Errorf("cid: %w", err))
		return
	}
	p, err := d.ledger.Prove(c)
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

func (d *Daemon) handleLedgerHeads(w http.ResponseWriter, r *http.Request) {
	api.WriteJSON(w, http.StatusOK, map[string]any{"root": d.ledger.RootHex(), "entries": d.ledger.Len(), "heads": d.ledger.Heads()})
}

func (d *Daemon) handleLedgerBalance(w http.ResponseWriter, r *http.Request) {
	if s := r.URL.Query().Get("peer"); s != "" {
		p, err := peer.Decode(s)
		if err != nil {
			api.WriteError(w, http.StatusBadRequest, fmt.Errorf("peer ID %q: %w", s, err))
			return
		}
		api.WriteJSON(w, http.StatusOK, []ledger.Balance{d.ledger.Balance(p)})
		return
	}
	api.WriteJSON(w, http.StatusOK, d.ledger.Balances())
}

// grantRequest is the body of POST /v1/ledger/grants.
type grantRequest struct {
	To string `json:"to"`
	// Amount is in micro-credits (stored in the grant as pico-credits).
	Amount uint64 `json:"amount"`
	Memo   string `json:"memo"`
}

func (d *Daemon) handleLedgerGrant(w http.ResponseWriter, r *http.Request) {
	var req grantRequest
	if err := api.DecodeJSON(r, &req); err != nil {
		api.WriteError(w, http.StatusBadRequest, err)
		return
	}
	to, err := peer.Decode(req.To)
	if err != nil {
		api.WriteError(w, http.StatusBadRequest, fmt.Errorf("to: peer ID %q: %w", req.To, err))
		return
	}
	if req.Amount == 0 || req.Amount > math.MaxUint64/ledger.PicoPerMicro {
		api.WriteError(w, http.StatusBadRequest, fmt.Errorf("amount must be a positive number of micro-credits, at most %d", uint64(math.MaxUint64/ledger.PicoPerMicro)))
		return
	}
	if !slices.Contains(d.ledger.Granters(), d.ledger.ID()) {
		why := "on the public grid only the peers in [ledger] granters may grant"
		if d.cfg.Node.Grid != "" {
			why = "on a private grid only its founder and the granters its grid file names may grant"
		}
		api.WriteError(w, http.StatusForbidden, fmt.Errorf("this node is not a granter: %s; its grant would count in no balance, so none was written", why))
		return
	}
	e, err := d.ledger.Append(r.Context(), ledger.Grant{To: to, Amount: req.Amount * ledger.PicoPerMicro, Memo: req.Memo})
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

// handleLedgerEpoch reports the latest contract epoch of an instance (fencing).
func (d *Daemon) handleLedgerEpoch(w http.ResponseWriter, r *http.Request) {
	inst := r.PathValue("instance")
	c, epoch, ok := d.ledgerLatestEpoch(inst)
	if !ok {
		api.WriteError(w, http.StatusNotFound, fmt.Errorf("%w: no contract for instance %q", ledger.ErrNotFound, inst))
		return
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{"instance_id": inst, "epoch": epoch, "contract": c.String()})
}

// ledgerGranters are the authors whose grants count: on a private grid its
// founder and the granters its grid file names ([ledger] granters is
// ignored there); on the public grid the configured [ledger] granters
// (none by default: no grant counts).
func ledgerGranters(c config.Config) ([]peer.ID, error) {
	if c.Node.Grid != "" {
		f, err := grid.ReadFile(c.Node.Grid)
		if err != nil {
			return nil, err
		}
		return append([]peer.ID{f.Founder}, f.Granters...), nil
	}
	var out []peer.ID
	for _, g := range c.Ledger.Granters {
		p, err := peer.Decode(g)
		if err != nil {
			return nil, fmt.Errorf("ledger: granter %q: %w", g, err)
		}
		out = append(out, p)
	}
	return out, nil
}
