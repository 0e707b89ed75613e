// Package daemon wires a weft node together: the p2p layer, the ledger, the
// recipe store (package content), the partitions, the market (with
// packages schedp2p, schedrun, jobs and marketapi), the billing loop (the
// ledger–market bridge of package settle) and the dashboard, plus the local
// API. It holds wiring, not protocol logic (test/layering_test.go bounds
// its size).
//
// Each subsystem is one small struct built by its constructor (newP2P,
// newLedger, newRecipes, newPartitions, newMarket, newBilling,
// newDashboard) from an env and the subsystems it depends on, passed in
// explicitly. Run calls them in dependency order — each is built from the
// ones before it, so nothing is bound late — and closes them in reverse.
//
// Concurrency: Run is called once; subsystems own their goroutines and stop
// them in the closers they register with env.onClose.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/weftgrid/weft/cmd/weft/internal/api"
	"github.com/weftgrid/weft/cmd/weft/internal/config"
	"github.com/weftgrid/weft/p2p/grid"
)

// Daemon is one weft node, ready to Run.
type Daemon struct {
	cfg config.Config
	log *slog.Logger
}

// New validates cfg and prepares the data directory.
func New(cfg config.Config, log *slog.Logger) (*Daemon, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Node.DataDir == "" {
		return nil, errors.New("daemon: no data dir")
	}
	if err := os.MkdirAll(cfg.Node.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("daemon: data dir: %w", err)
	}
	if log == nil {
		log = slog.Default()
	}
	if cfg.Node.Grid != "" {
		// A private grid's file may fix its billing slice: it overrides
		// the node's [ledger] slice (--slice), so every member agrees.
		f, err := grid.ReadFile(cfg.Node.Grid)
		if err != nil {
			return nil, err
		}
		if f.Slice > 0 {
			cfg.Ledger.Slice = f.Slice.String()
		}
	}
	return &Daemon{cfg: cfg, log: log}, nil
}

// env is what every subsystem is built with: the node's configuration and
// logger, the API server its routes go on, the metrics registry, and
// onClose, which registers a closer to run at shutdown (in reverse order of
// registration).
type env struct {
	cfg     config.Config
	log     *slog.Logger
	api     *api.Server
	metrics *prometheus.Registry
	onClose func(func() error)
}

// Run builds every subsystem, serves the API and blocks until ctx ends; then
// it leaves the grid gracefully and closes everything.
func (d *Daemon) Run(ctx context.Context) (err error) {
	token, err := api.LoadOrCreateToken(d.cfg.Node.DataDir)
	if err != nil {
		return err
	}
	var cl closers
	defer func() { err = errors.Join(err, cl.closeAll()) }()
	e := env{cfg: d.cfg, log: d.log, api: api.NewServer(token, d.log), metrics: prometheus.NewRegistry(), onClose: cl.add}
	fail := func(name string, err error) error { return fmt.Errorf("daemon: start %s: %w", name, err) }

	node, err := newP2P(ctx, e) // host, DHT, gossip, membership
	if err != nil {
		return fail("p2p", err)
	}
	e.log = e.log.With("peer", node.node.ID().String())
	// The dashboard's change stream before the subsystems that notify it
	// as soon as they run; its poll starts last, over all their routes.
	dash := newDashboard(e)
	led, err := newLedger(ctx, e, node.node) // ledger, its gossip and anti-entropy over p2p, checkpoints
	if err != nil {
		return fail("ledger", err)
	}
	rec, err := newRecipes(ctx, e, node.node) // content store and transfer over p2p
	if err != nil {
		return fail("recipes", err)
	}
	parts, err := newPartitions(ctx, e, partitionDeps{Node: node.node, Content: rec, Ledger: led.ledger, Notify: dash.notify})
	if err != nil {
		return fail("partitions", err)
	}
	mkt, err := newMarket(ctx, e, marketDeps{Node: node.node, Parts: parts.m, Content: rec, Ledger: led, Notify: dash.notify})
	if err != nil {
		return fail("market", err)
	}
	// The bridge, built after both the ledger and the market: bills the
	// partitions' usage, judges receipts by the market's view.
	newBilling(ctx, e, led, parts.m, mkt.market, node.node)
	routeStatus(e.api, node.node, led.status, recipesStatus(rec), parts.status, mkt.status)
	dash.start(ctx, token)
	return serve(ctx, e, token)
}

// serve listens on [node] api, writes the endpoint file and serves the API
// until ctx ends or the server fails.
func serve(ctx context.Context, e env, token string) error {
	if host, _, err := net.SplitHostPort(e.cfg.Node.API); err == nil && !config.LoopbackHost(host) {
		if !e.cfg.Node.APIAllowRemote {
			return fmt.Errorf("daemon: api %s is not a loopback address (set node.api_allow_remote to allow it)", e.cfg.Node.API)
		}
		e.log.Warn("the API listens on a non-loopback address: anyone who reaches it can try the token; "+
			"prefer loopback and an SSH tunnel", "api", e.cfg.Node.API)
	}
	ln, err := net.Listen("tcp", e.cfg.Node.API)
	if err != nil {
		return fmt.Errorf("daemon: api listen %s: %w", e.cfg.Node.API, err)
	}
	if err := api.WriteEndpoint(e.cfg.Node.DataDir, api.Endpoint{Addr: ln.Addr().String(), Token: token}); err != nil {
		ln.Close()
		return err
	}
	e.onClose(func() error { api.RemoveEndpoint(e.cfg.Node.DataDir); return nil })
	serveErr := make(chan error, 1)
	go func() { serveErr <- e.api.Serve(ln) }()
	e.onClose(e.api.Close)
	e.log.Info("node ready", "api", ln.Addr().String())

	select {
	case <-ctx.Done():
		e.log.Info("shutting down")
		return nil
	case err := <-serveErr:
		return err
	}
}

// closers are the shutdown functions the subsystems registered.
type closers struct {
	mu  sync.Mutex
	fns []func() error
}

// add registers fn to run at shutdown, in reverse order of registration.
func (c *closers) add(fn func() error) {
	c.mu.Lock()
	c.fns = append(c.fns, fn)
	c.mu.Unlock()
}

// closeAll runs the closers, the last registered first.
func (c *closers) closeAll() error {
	c.mu.Lock()
	fns := c.fns
	c.fns = nil
	c.mu.Unlock()
	var errs []error
	for i := len(fns) - 1; i >= 0; i-- {
		errs = append(errs, fns[i]())
	}
	return errors.Join(errs...)
}
