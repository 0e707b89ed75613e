package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"path/filepath"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/weftgrid/weft/cmd/weft/internal/api"
	"github.com/weftgrid/weft/cmd/weft/internal/config"
	"github.com/weftgrid/weft/cmd/weft/internal/content"
	"github.com/weftgrid/weft/cmd/weft/internal/dashboard"
	"github.com/weftgrid/weft/cmd/weft/internal/drain"
	"github.com/weftgrid/weft/cmd/weft/internal/jobs"
	"github.com/weftgrid/weft/cmd/weft/internal/marketapi"
	"github.com/weftgrid/weft/cmd/weft/internal/remotelog"
	"github.com/weftgrid/weft/cmd/weft/internal/timeline"
	"github.com/weftgrid/weft/cmd/weft/internal/tunnels"
	"github.com/weftgrid/weft/ledger/settle"
	"github.com/weftgrid/weft/p2p"
	"github.com/weftgrid/weft/partition"
	"github.com/weftgrid/weft/scheduler"
	"github.com/weftgrid/weft/scheduler/schedp2p"
	"github.com/weftgrid/weft/scheduler/schedrun"
)

// marketSys is the market subsystem: the market engine (scheduler.Market)
// over libp2p, the partitions and the ledger, with its runner, batch jobs,
// timelines, tunnels, drain and remote logs.
type marketSys struct {
	market *scheduler.Market
	runner *schedrun.Runner
	// jobs are the batch jobs run through POST /v1/jobs.
	jobs *jobs.Jobs
	deps marketDeps
	log  *slog.Logger
}

// marketDeps are what the market is built with, all required.
type marketDeps struct {
	// Node is the p2p node: the market's transport and membership.
	Node *p2p.Node
	// Parts are the partitions the market runs hosted instances in.
	Parts *partition.Manager
	// Content is the recipe store the market fetches recipes and
	// artifacts into and announces results from.
	Content *content.Service
	// Ledger records contracts, gives balances and fencing epochs.
	Ledger *ledgerSys
	// Notify tells the dashboard a topic changed (dashboard.Topic*).
	Notify func(topic string)
}

// MarketDir is where the market keeps its requests and hosted contracts
// across restarts, inside the data directory.
const MarketDir = "market"

// marketConfig turns [market] (and [node] labels, [ledger] credit_limit)
// into the engine's config.
func marketConfig(c config.Config) (scheduler.Config, error) {
	mc := c.Market
	cfg := scheduler.DefaultConfig()
	veto, window, award, grace, status := mc.Durations()
	cfg.Auction.Window, cfg.Auction.AwardTimeout, cfg.Auction.EnoughBids = window, award, mc.EnoughBids
	cfg.Grace, cfg.StatusInterval, cfg.HookTimeout = grace, status, veto+time.Second
	cfg.BidderSet = mc.BidderSet
	cfg.NoBids = c.Partitions.Count == 0
	cfg.Guardians = mc.Guardians
	p := &cfg.Policy
	p.Slice = c.Ledger.SliceDuration() // announced, bid, awarded and accepted: one slice per contract
	p.Prices = scheduler.PriceList{PerCoreHour: scheduler.Amount(mc.Prices.PerCoreHour), PerGiBHour: scheduler.Amount(mc.Prices.PerGiBHour),
		PerDiskGiBHour: scheduler.Amount(mc.Prices.PerDiskGiBHour), PerInstanceHour: scheduler.Amount(mc.Prices.PerInstanceHour)}
	p.MaxLoad = mc.MaxLoad
	p.Labels = maps.Clone(c.Node.Labels)
	if mc.CheckCredit {
		p.CheckCredit = true
		// Decide declines when balance < -CreditLimit, i.e. below [ledger]
		// credit_limit, which may be positive (a required deposit).
		p.CreditLimit = scheduler.Amount(-c.Ledger.CreditLimit)
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

// newMarket starts the market engine and registers its routes, metrics
// and closers.
func newMarket(ctx context.Context, e env, deps marketDeps) (*marketSys, error) {
	if deps.Node == nil {
		return nil, errors.New("market: the p2p node is not running")
	}
	cfg, err := marketConfig(e.cfg)
	if err != nil {
		return nil, err
	}
	parts, runContent, err := marketBackends(deps.Parts, deps.Content)
	if err != nil {
		return nil, err
	}
	log := e.log.With("subsystem", "market")
	s := &marketSys{runner: schedrun.NewRunner(parts, runContent, e.cfg.Node.DataDir), deps: deps, log: log}
	node := deps.Node
	tr, err := schedp2p.New(ctx, node, log)
	if err != nil {
		return nil, err
	}
	e.onClose(tr.Close)
	sdeps := scheduler.Deps{Transport: tr, Membership: schedp2p.Membership{Node: node}, Runner: s.runner,
		Contracts: settle.NewRecorder(deps.Ledger.ledger, deps.Ledger.slice), Balances: settle.Balances{L: deps.Ledger.ledger}, Log: log}
	storeDir := filepath.Join(e.cfg.Node.DataDir, MarketDir)
	store, err := scheduler.NewDirStore(storeDir)
	if err != nil {
		return nil, fmt.Errorf("market: state dir: %w", err)
	}
	sdeps.Store = store
	awaitMembership(ctx, node, storeDir, log)
	if e.cfg.Market.VetoHook != "" {
		veto, _, _, _, _ := e.cfg.Market.Durations()
		sdeps.Veto = schedrun.CommandVeto{Command: e.cfg.Market.VetoHook, Timeout: veto}
	}
	m, err := scheduler.New(cfg, node.PrivKey(), sdeps)
	if err != nil {
		return nil, err
	}
	if s.jobs, err = jobs.Open(filepath.Join(e.cfg.Node.DataDir, jobs.Dir), m, log); err != nil {
		return nil, err
	}
	s.jobs.Routes(e.api)
	tl, err := timeline.Start(filepath.Join(e.cfg.Node.DataDir, timeline.Dir), log, e.api, m, &s.jobs.Purged)
	if err != nil {
		return nil, err
	}
	e.onClose(tl.Close) // after the market's Close (closers run in reverse)
	if err := m.Start(ctx); err != nil {
		return nil, err
	}
	s.market = m
	e.onClose(m.Close)
	pre := scheduler.NewPrefetch(runContent.Fetch)
	pre.JobDone = func(v scheduler.InstanceView) { s.jobs.Release(ctx, v) }
	fctx, fcancel := context.WithCancel(ctx)
	var bg sync.WaitGroup
	bg.Add(3)
	go func() { defer bg.Done(); s.fenceLoop(fctx) }()
	go func() { defer bg.Done(); pre.Run(fctx) }()
	// A member declared dead (or back) is acted on at once, not at the
	// market's next membership refresh.
	events, unsubscribe := node.SubscribeMembers()
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
	e.onClose(func() error { fcancel(); bg.Wait(); return nil })
	m.Observe(func(ev scheduler.Event) {
		pre.Observe(ev)
		tl.Observe(ev)
		switch ev.Kind {
		case scheduler.EventHosting, scheduler.EventFenced:
			deps.Notify(dashboard.TopicPartitions)
		default:
			deps.Notify(dashboard.TopicInstances)
			deps.Notify(dashboard.TopicAuctions)
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
		_ = e.metrics.Register(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: c.name, Help: c.help},
			func() float64 { return float64(f(m.Stats())) }))
	}
	h := &marketapi.Handlers{Market: m, Content: runContent, Jobs: s.jobs, MaxRetries: e.cfg.Market.MaxRetries}
	h.Routes(e.api)
	e.onClose(tunnels.Start(node.Host(), string(node.ProtocolPrefix()), deps.Parts, e.cfg.Partitions.Host, m, e.api, log).Close)
	drain.Routes(e.api, m, node, e.cfg.Partitions.Count == 0)
	e.onClose(remotelog.Start(node.Host(), string(node.ProtocolPrefix()), deps.Parts, m, e.api, log).Close)
	return s, nil
}

// status fills the "market" section of GET /v1/status.
func (s *marketSys) status(st *api.Status) {
	c := s.market.Stats()
	st.Market = &api.MarketStatus{Placements: c.Placements, Sent: c.Sent, Received: c.Received, Dropped: c.Dropped, Fenced: c.Fenced}
}
