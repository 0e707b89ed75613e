package daemon

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/weftgrid/weft/cmd/weft/internal/api"
	"github.com/weftgrid/weft/cmd/weft/internal/dashboard"
	"github.com/weftgrid/weft/cmd/weft/internal/jobs"
	"github.com/weftgrid/weft/cmd/weft/internal/remotelog"
	"github.com/weftgrid/weft/cmd/weft/internal/timeline"
	"github.com/weftgrid/weft/ledger/settle"
	"github.com/weftgrid/weft/recipes"
	"github.com/weftgrid/weft/scheduler"
	"github.com/weftgrid/weft/scheduler/schedp2p"
	"github.com/weftgrid/weft/scheduler/schedrun"
)

// marketState is the market subsystem's part of the Daemon: the market
// engine (scheduler.Market) over libp2p, the partitions and the ledger.
type marketState struct {
	market        *scheduler.Market
	marketRunner  *schedrun.Runner
	marketContent schedrun.Content
	// jobs are the batch jobs run through POST /v1/jobs.
	jobs *jobs.Jobs
}

// MarketDir is where the market keeps its requests and hosted contracts
// across restarts, inside the data directory.
const MarketDir = "market"

// marketConfig turns [market] (and [node] labels, [ledger] credit_limit)
// into the engine's config.
func (d *Daemon) marketConfig() (scheduler.Config, error) {
	mc := d.cfg.Market
	cfg := scheduler.DefaultConfig()
	veto, window, award, grace, status := mc.Durations()
	cfg.Auction.Window, cfg.Auction.AwardTimeout, cfg.Auction.EnoughBids = window, award, mc.EnoughBids
	cfg.Grace, cfg.StatusInterval, cfg.HookTimeout = grace, status, veto+time.Second
	cfg.BidderSet = mc.BidderSet
	cfg.NoBids = d.cfg.Partitions.Count == 0
	cfg.Guardians = mc.Guardians
	p := &cfg.Policy
	p.Slice = d.ledgerSlice() // announced, bid, awarded and accepted: one slice per contract
	p.Prices = scheduler.PriceList{PerCoreHour: scheduler.Amount(mc.Prices.PerCoreHour), PerGiBHour: scheduler.Amount(mc.Prices.PerGiBHour),
		PerDiskGiBHour: scheduler.Amount(mc.Prices.PerDiskGiBHour), PerInstanceHour: scheduler.Amount(mc.Prices.PerInstanceHour)}
	p.MaxLoad = mc.MaxLoad
	p.Labels = maps.Clone(d.cfg.Node.Labels)
	if mc.CheckCredit {
		p.CheckCredit = true
		// Decide declines when balance < -CreditLimit, i.e. below [ledger]
		// credit_limit, which may be positive (a required deposit).
		p.CreditLimit = scheduler.Amount(-d.cfg.Ledger.CreditLimit)
	}
	for _, l := range []struct {
		ids []string
		to  *[]peer.ID
		key string
	}{{mc.Allow, &p.Allow, "allow"}, {mc.Deny, &p.Deny, "deny"}} {
		for _, s := range l.ids {
			id, err := peer.Decode(s)
			if err != nil {
				return cfg, fmt.Errorf("market.%s: %q is not a peer ID: %w", l.key, s, err)
			}
			*l.to = append(*l.to, id)
		}
	}
	return cfg, cfg.Validate()
}

// startMarket starts the market engine, registers its API routes on d.api
// and its closers with d.onClose.
func (d *Daemon) startMarket(ctx context.Context) error {
	if d.node == nil {
		return errors.New("market: the p2p node is not running")
	}
	cfg, err := d.marketConfig()
	if err != nil {
		return err
	}
	parts, content, err := d.marketBackends(ctx)
	if err != nil {
		return err
	}
	d.marketContent = content
	d.marketRunner = schedrun.NewRunner(parts, content, d.cfg.Node.DataDir)
	log := d.log.With("subsystem", "market")
	tr, err := schedp2p.New(ctx, d.node, log)
	if err != nil {
		return err
	}
	d.onClose(tr.Close)
	deps := scheduler.Deps{Transport: tr, Membership: schedp2p.Membership{Node: d.node}, Runner: d.marketRunner,
		Contracts: settle.NewRecorder(d.ledger, d.ledgerSlice()), Balances: settle.Balances{L: d.ledger}, Log: log}
	storeDir := filepath.Join(d.cfg.Node.DataDir, MarketDir)
	store, err := scheduler.NewDirStore(storeDir)
	if err != nil {
		return fmt.Errorf("market: state dir: %w", err)
	}
	deps.Store = store
	d.awaitMembership(ctx, storeDir)
	if d.cfg.Market.VetoHook != "" {
		veto, _, _, _, _ := d.cfg.Market.Durations()
		deps.Veto = schedrun.CommandVeto{Command: d.cfg.Market.VetoHook, Timeout: veto}
	}
	m, err := scheduler.New(cfg, d.node.PrivKey(), deps)
	if err != nil {
		return err
	}
	if d.jobs, err = jobs.Open(filepath.Join(d.cfg.Node.DataDir, jobs.Dir), m, log); err != nil {
		return err
	}
	d.jobs.Routes(d.api)
	tl, err := timeline.Start(filepath.Join(d.cfg.Node.DataDir, timeline.Dir), log, d.api, m, &d.jobs.Purged)
	if err != nil {
		return err
	}
	d.onClose(tl.Close) // after the market's Close (closers run in reverse)
	if err := m.Start(ctx); err != nil {
		return err
	}
	d.market = m
	d.onClose(m.Close)
	pre := scheduler.NewPrefetch(content.Fetch)
	pre.JobDone = func(v scheduler.InstanceView) { d.jobs.Release(ctx, v) }
	fctx, fcancel := context.WithCancel(ctx)
	var bg sync.WaitGroup
	bg.Add(3)
	go func() { defer bg.Done(); d.fenceLoop(fctx, m) }()
	go func() { defer bg.Done(); pre.Run(fctx) }()
	// A member declared dead (or back) is acted on at once, not at the
	// market's next membership refresh.
	events, unsubscribe := d.node.SubscribeMembers()
	go func() {
		defer bg.Done()
		defer unsubscribe()
		for {
			select {
			case <-events:
				m.MembershipChanged()
			case <-fctx.Done():
				return
			}
		}
	}()
	d.onClose(func() error { fcancel(); bg.Wait(); return nil })
	m.Observe(func(ev scheduler.Event) {
		pre.Observe(ev)
		tl.Observe(ev)
		switch ev.Kind {
		case scheduler.EventHosting, scheduler.EventFenced:
			d.notify(dashboard.TopicPartitions)
		default:
			d.notify(dashboard.TopicInstances)
			d.notify(dashboard.TopicAuctions)
		}
	})
	for _, c := range []struct {
		name, help string
		f          func(scheduler.Stats) uint64
	}{
		{"weft_market_placements_total", "Contracts formed by this node as auctioneer.", func(s scheduler.Stats) uint64 { return s.Placements }},
		{"weft_market_messages_sent_total", "Market messages sent (a broadcast counts once).", func(s scheduler.Stats) uint64 { return s.Sent }},
		{"weft_market_messages_received_total", "Market messages received.", func(s scheduler.Stats) uint64 { return s.Received }},
		{"weft_market_messages_dropped_total", "Market messages rejected or over the queue bound.", func(s scheduler.Stats) uint64 { return s.Dropped }},
		{"weft_market_fenced_total", "Local copies stopped because a newer contract won.", func(s scheduler.Stats) uint64 { return s.Fenced }},
	} {
		f := c.f
		_ = d.metrics.Register(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: c.name, Help: c.help},
			func() float64 { return float64(f(m.Stats())) }))
	}
	d.statusExtras = append(d.statusExtras, func(st map[string]any) {
		s := m.Stats()
		st["market"] = map[string]any{"placements": s.Placements, "sent": s.Sent, "received": s.Received, "dropped": s.Dropped, "fenced": s.Fenced}
	})

	d.api.HandleFunc("POST /v1/requests", d.handleRequest)
	d.api.HandleFunc("GET /v1/instances", func(w http.ResponseWriter, r *http.Request) { api.WriteJSON(w, http.StatusOK, m.Instances()) })
	d.api.HandleFunc("GET /v1/instances/{name}", d.handleInstance)
	d.startTunnels(m)
	d.onClose(remotelog.Start(d.node.Host(), string(d.node.ProtocolPrefix()), d.parts, m, d.api, log).Close)
	d.api.HandleFunc("GET /v1/auctions", func(w http.ResponseWriter, r *http.Request) { api.WriteJSON(w, http.StatusOK, m.Auctions()) })
	d.api.HandleFunc("GET /v1/hosted", func(w http.ResponseWriter, r *http.Request) { api.WriteJSON(w, http.StatusOK, m.Hosted()) })
	d.api.HandleFunc("POST /v1/jobs", d.handleJobRun)
	d.api.HandleFunc("GET /v1/jobs/{id}", d.handleJob)
	d.api.HandleFunc("POST /v1/jobs/result", d.handleJobResult)
	return nil
}

// requestError is an error with its HTTP status.
type requestError struct {
	status int
	err    error
}

func (e *requestError) Error() string { return e.err.Error() }
func (e *requestError) Unwrap() error { return e.err }

func badRequest(format string, args ...any) error {
	return &requestError{http.StatusBadRequest, fmt.Errorf(format, args...)}
}

// resolveRecipe stores an inline recipe or finds one by CID (fetching it
// from the grid), and returns it with its CID.
func (d *Daemon) resolveRecipe(ctx context.Context, in *api.Request) (*recipes.Recipe, string, error) {
	if in.RecipeTOML != "" {
		rc, err := recipes.Parse("recipe.toml", []byte(in.RecipeTOML))
		if err != nil {
			return nil, "", badRequest("market: recipe: %w", err)
		}
		c, err := d.marketContent.PutRecipe(rc)
		if err != nil {
			return nil, "", err
		}
		return rc, c.String(), nil
	}
	if in.RecipeCID == "" {
		return nil, "", badRequest("market: a recipe is required for a new instance (recipe_cid or recipe_toml; weft request NAME --recipe FILE|CID)")
	}
	c, err := cid.Decode(in.RecipeCID)
	if err != nil {
		return nil, "", badRequest("market: recipe %q is not a CID: %v", in.RecipeCID, err)
	}
	fctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	rc, err := d.marketContent.Recipe(fctx, c)
	if err != nil {
		return nil, "", &requestError{http.StatusNotFound, fmt.Errorf("%w (publish it with weft recipe publish FILE, or pass --recipe FILE)", err)}
	}
	return rc, c.String(), nil
}

// buildSpec turns a request body into a market spec: the recipe resolved,
// params validated against its schema, resources from the software type,
// constraints parsed.
func (d *Daemon) buildSpec(ctx context.Context, in *api.Request, batch bool) (scheduler.RequestSpec, error) {
	var spec scheduler.RequestSpec
	state, err := scheduler.ParseState(in.State)
	if err != nil {
		return spec, badRequest("%w", err)
	}
	spec.Name, spec.SoftwareType, spec.State = in.Name, in.Type, state
	if state == scheduler.StateDestroyed && in.RecipeCID == "" && in.RecipeTOML == "" {
		v, err := d.market.Instance(in.Name)
		if err != nil {
			return spec, &requestError{http.StatusNotFound, fmt.Errorf("market: no instance %s to destroy (list them with weft instance list)", in.Name)}
		}
		spec.RecipeCID, spec.SoftwareType, spec.Resources, spec.Batch = v.RecipeCID, v.SoftwareType, v.Resources, v.Batch
		return spec, scheduler.ApplySLA(&spec, in.SLA)
	}
	// A re-request reuses the stored recipe, type, parameters (each --param
	// overrides one) and constraints (unless --sla gives new ones).
	prev, hasPrev := d.market.Spec(ctx, in.Name)
	hasPrev = hasPrev && !batch
	if hasPrev && in.RecipeCID == "" && in.RecipeTOML == "" {
		in.RecipeCID = prev.RecipeCID
		in.Type = cmp.Or(in.Type, prev.SoftwareType)
	}
	rc, c, err := d.resolveRecipe(ctx, in)
	if err != nil {
		return spec, err
	}
	st, err := rc.Type(in.Type)
	if err != nil {
		return spec, badRequest("market: %w", err)
	}
	if schema, _ := rc.Schema(in.Type); hasPrev {
		in.Params = scheduler.ReuseParams(prev.Params, in.Params, func(k string) bool { return schema[k] != nil })
	}
	if _, err := rc.ValidateParams(in.Type, in.Params); err != nil {
		return spec, badRequest("market: %w", err)
	}
	if batch && !st.Batch {
		tn := in.Type
		if tn == "" {
			tn = rc.DefaultType
		}
		return spec, badRequest("market: software type %q of recipe %s is not a batch job (use weft request for services)", tn, rc.Name)
	}
	spec.RecipeCID, spec.SoftwareType, spec.Params, spec.Batch = c, in.Type, in.Params, st.Batch
	spec.Resources = scheduler.Resources{CPUMillis: st.Resources.CPUMillis, MemoryBytes: int64(st.Resources.MemoryBytes), DiskBytes: int64(st.Resources.DiskBytes)}
	if err := scheduler.ApplySLA(&spec, in.SLA); err != nil {
		return spec, badRequest("%w", err)
	}
	if hasPrev && len(in.SLA) == 0 {
		scheduler.ReuseConstraints(&spec, prev)
	}
	return spec, nil
}

func writeMarketError(w http.ResponseWriter, err error) {
	var re *requestError
	switch {
	case errors.As(err, &re):
		api.WriteError(w, re.status, err)
	case errors.Is(err, scheduler.ErrNotFound):
		api.WriteError(w, http.StatusNotFound, err)
	case errors.Is(err, scheduler.ErrInvalidRequest), errors.Is(err, scheduler.ErrUnknownConstraint),
		errors.Is(err, scheduler.ErrBadConstraint), errors.Is(err, scheduler.ErrTooLarge):
		api.WriteError(w, http.StatusBadRequest, err)
	default:
		api.WriteError(w, http.StatusInternalServerError, err)
	}
}

func (d *Daemon) handleRequest(w http.ResponseWriter, r *http.Request) {
	var in api.Request
	if err := api.DecodeJSON(r, &in); err != nil {
		api.WriteError(w, http.StatusBadRequest, err)
		return
	}
	if err := scheduler.ValidateName(in.Name); err != nil {
		writeMarketError(w, err)
		return
	}
	spec, err := d.buildSpec(r.Context(), &in, false)
	if err != nil {
		writeMarketError(w, err)
		return
	}
	v, err := d.market.Request(r.Context(), spec)
	if err != nil {
		writeMarketError(w, err)
		return
	}
	api.WriteJSON(w, http.StatusOK, v)
}

func (d *Daemon) handleInstance(w http.ResponseWriter, r *http.Request) {
	v, err := d.market.Instance(r.PathValue("name"))
	if err != nil {
		writeMarketError(w, fmt.Errorf("%w: %s (list them with weft instance list)", err, r.PathValue("name")))
		return
	}
	api.WriteJSON(w, http.StatusOK, v)
}

func (d *Daemon) handleJobRun(w http.ResponseWriter, r *http.Request) {
	var in api.Request
	if err := api.DecodeJSON(r, &in); err != nil {
		api.WriteError(w, http.StatusBadRequest, err)
		return
	}
	// A job runs: a state asking for anything else (a stop or a destroy
	// sent here) must not start it.
	if in.State != "" && in.State != scheduler.StateStarted.String() {
		api.WriteError(w, http.StatusBadRequest, fmt.Errorf("market: state %q: POST /v1/jobs only runs jobs; change a job's state with POST /v1/requests (weft request NAME --state %s)", in.State, in.State))
		return
	}
	in.State = ""
	named := in.Name != ""
	if !named {
		in.Name = "job-pending"
	}
	spec, err := d.buildSpec(r.Context(), &in, true)
	if err != nil {
		writeMarketError(w, err)
		return
	}
	if !named {
		spec.Name = jobs.Name(spec.RecipeCID, spec.SoftwareType, spec.Params)
	}
	spec.MaxRetries = d.cfg.Market.MaxRetries
	if in.MaxRetries != nil {
		spec.MaxRetries = *in.MaxRetries
	}
	j, err := d.jobs.Run(r.Context(), spec, named)
	if err != nil {
		writeMarketError(w, err)
		return
	}
	api.WriteJSON(w, http.StatusOK, j)
}

func (d *Daemon) handleJob(w http.ResponseWriter, r *http.Request) {
	v, err := d.market.Instance(r.PathValue("id"))
	if err != nil || !v.Batch {
		writeMarketError(w, fmt.Errorf("%w: job %s", scheduler.ErrNotFound, r.PathValue("id")))
		return
	}
	api.WriteJSON(w, http.StatusOK, d.jobs.View(v))
}

func (d *Daemon) handleJobResult(w http.ResponseWriter, r *http.Request) {
	var in api.JobResult
	if err := api.DecodeJSON(r, &in); err != nil {
		api.WriteError(w, http.StatusBadRequest, err)
		return
	}
	c, err := cid.Decode(in.CID)
	if err != nil {
		api.WriteError(w, http.StatusBadRequest, fmt.Errorf("market: %q is not a CID: %w", in.CID, err))
		return
	}
	if !filepath.IsAbs(in.Out) {
		api.WriteError(w, http.StatusBadRequest, fmt.Errorf("market: out %q must be an absolute path", in.Out))
		return
	}
	var hints []peer.ID
	for _, v := range d.market.Instances() {
		if v.Result == in.CID && v.Node != "" {
			if id, err := peer.Decode(v.Node); err == nil {
				hints = append(hints, id)
			}
		}
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Minute)
	defer cancel()
	if err := d.marketContent.FetchDir(ctx, c, in.Out, hints...); err != nil {
		status := http.StatusBadGateway
		if strings.Contains(err.Error(), "not a directory") {
			status = http.StatusBadRequest
		}
		api.WriteError(w, status, fmt.Errorf("market: result %s: %w", in.CID, err))
		return
	}
	api.WriteJSON(w, http.StatusOK, map[string]string{"cid": in.CID, "out": in.Out})
}
