package daemon

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/weftgrid/weft/cmd/weft/internal/api"
	"github.com/weftgrid/weft/cmd/weft/internal/dashboard"
	"github.com/weftgrid/weft/cmd/weft/internal/drain"
	"github.com/weftgrid/weft/cmd/weft/internal/jobs"
	"github.com/weftgrid/weft/cmd/weft/internal/marketapi"
	"github.com/weftgrid/weft/cmd/weft/internal/remotelog"
	"github.com/weftgrid/weft/cmd/weft/internal/timeline"
	"github.com/weftgrid/weft/ledger/settle"
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
	d.statusExtras = append(d.statusExtras, func(st *api.Status) {
		s := m.Stats()
		st.Market = &api.MarketStatus{Placements: s.Placements, Sent: s.Sent, Received: s.Received, Dropped: s.Dropped, Fenced: s.Fenced}
	})

	h := &marketapi.Handlers{Market: m, Content: d.marketContent, Jobs: d.jobs, MaxRetries: d.cfg.Market.MaxRetries}
	h.Routes(d.api)
	d.startTunnels(m)
	drain.Routes(d.api, m, d.node, d.cfg.Partitions.Count == 0)
	d.onClose(remotelog.Start(d.node.Host(), string(d.node.ProtocolPrefix()), d.parts, m, d.api, log).Close)
	return nil
}
