// Package daemon wires a weft node together: the p2p layer, the ledger, the
// recipe store (package content), the partitions, the market (with
// packages schedp2p, schedrun, jobs and marketapi), the billing loop (the
// ledger–market bridge of package settle) and the dashboard, plus the local
// API. It holds wiring, not protocol logic (test/layering_test.go bounds
// its size). Each subsystem has its own file and start function; Run calls
// them in dependency order — each is built from the ones before it, so
// nothing is bound late — and closes them in reverse.
//
// Concurrency: Run is called once; subsystems own their goroutines and stop
// them in the closers they register with onClose.
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
	"github.com/weftgrid/weft/cmd/weft/internal/content"
	"github.com/weftgrid/weft/p2p/grid"
)

// Daemon is one running weft node.
type Daemon struct {
	cfg     config.Config
	log     *slog.Logger
	api     *api.Server
	metrics *prometheus.Registry

	mu      sync.Mutex
	closers []func() error

	p2pState
	ledgerState
	content *content.Service // the recipes subsystem (startRecipes)
	partitionsState
	marketState
	dashboardState
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
	return &Daemon{cfg: cfg, log: log, metrics: prometheus.NewRegistry()}, nil
}

// onClose registers fn to run at shutdown, in reverse order of registration.
func (d *Daemon) onClose(fn func() error) {
	d.mu.Lock()
	d.closers = append(d.closers, fn)
	d.mu.Unlock()
}

// Run starts every subsystem, serves the API and blocks until ctx ends; then
// it leaves the grid gracefully and closes everything.
func (d *Daemon) Run(ctx context.Context) (err error) {
	token, err := api.LoadOrCreateToken(d.cfg.Node.DataDir)
	if err != nil {
		return err
	}
	d.api = api.NewServer(token, d.log)
	defer func() { err = errors.Join(err, d.closeAll()) }()

	steps := []struct {
		name  string
		start func(context.Context) error
	}{
		{"p2p", d.startP2P},               // the node: host, DHT, gossip, membership
		{"ledger", d.startLedger},         // ledger, its gossip and anti-entropy over p2p, checkpoints
		{"recipes", d.startRecipes},       // content store and transfer over p2p
		{"partitions", d.startPartitions}, // partition manager fetching from the content
		{"market", d.startMarket},         // market over p2p, partitions, content; contracts into the ledger
		{"billing", d.startBilling},       // the bridge: bills partitions' usage, judges by the market's view
		{"dashboard", d.startDashboard},   // event stream over everything above
	}
	for _, s := range steps {
		if err := s.start(ctx); err != nil {
			return fmt.Errorf("daemon: start %s: %w", s.name, err)
		}
	}

	if host, _, err := net.SplitHostPort(d.cfg.Node.API); err == nil && !config.LoopbackHost(host) {
		if !d.cfg.Node.APIAllowRemote {
			return fmt.Errorf("daemon: api %s is not a loopback address (set node.api_allow_remote to allow it)", d.cfg.Node.API)
		}
		d.log.Warn("the API listens on a non-loopback address: anyone who reaches it can try the token; "+
			"prefer loopback and an SSH tunnel", "api", d.cfg.Node.API)
	}
	ln, err := net.Listen("tcp", d.cfg.Node.API)
	if err != nil {
		return fmt.Errorf("daemon: api listen %s: %w", d.cfg.Node.API, err)
	}
	if err := api.WriteEndpoint(d.cfg.Node.DataDir, api.Endpoint{Addr: ln.Addr().String(), Token: token}); err != nil {
		ln.Close()
		return err
	}
	d.onClose(func() error { api.RemoveEndpoint(d.cfg.Node.DataDir); return nil })
	serveErr := make(chan error, 1)
	go func() { serveErr <- d.api.Serve(ln) }()
	d.onClose(d.api.Close)
	d.log.Info("node ready", "api", ln.Addr().String())

	select {
	case <-ctx.Done():
		d.log.Info("shutting down")
		return nil
	case err := <-serveErr:
		return err
	}
}

func (d *Daemon) closeAll() error {
	d.mu.Lock()
	cl := d.closers
	d.closers = nil
	d.mu.Unlock()
	var errs []error
	for i := len(cl) - 1; i >= 0; i-- {
		errs = append(errs, cl[i]())
	}
	return errors.Join(errs...)
}
