package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/weftgrid/weft/cmd/weft/internal/api"
	"github.com/weftgrid/weft/cmd/weft/internal/config"
	"github.com/weftgrid/weft/cmd/weft/internal/ledgerapi"
	"github.com/weftgrid/weft/ledger"
	"github.com/weftgrid/weft/ledger/ledgerp2p"
	"github.com/weftgrid/weft/ledger/settle"
	"github.com/weftgrid/weft/p2p"
	"github.com/weftgrid/weft/p2p/grid"
	"github.com/weftgrid/weft/partition"
	"github.com/weftgrid/weft/scheduler"
)

// ledgerSys is the ledger subsystem: the ledger, its gossip and
// anti-entropy over p2p (net, nil without a p2p node) and its checkpoints.
//
// For the market: settle.Recorder and settle.Balances over ledger record
// contracts and give balances, latestEpoch gives the fencing epoch of an
// instance, slice the grid's slice length. The billing loop is the bridge
// built after both the ledger and the market (newBilling).
type ledgerSys struct {
	ledger       *ledger.Ledger
	net          *ledgerp2p.Adapter
	checkpointer *ledger.Checkpointer
	// slice is the grid's slice length ([ledger] slice, --slice).
	slice time.Duration
}

// newLedger opens the ledger, joins its topic and anti-entropy when node
// (the p2p node, nil in tests) runs, starts the checkpoints and registers
// the API routes. The billing loop starts later (newBilling).
func newLedger(ctx context.Context, e env, node *p2p.Node) (*ledgerSys, error) {
	var signer *ledger.Signer
	if node != nil {
		s, err := ledger.NewSigner(node.PrivKey())
		if err != nil {
			return nil, err
		}
		signer = s
	}
	granters, err := ledgerGranters(e.cfg)
	if err != nil {
		return nil, err
	}
	cfg := ledger.DefaultConfig(filepath.Join(e.cfg.Node.DataDir, config.LedgerFile))
	cfg.Signer, cfg.Log, cfg.Granters = signer, e.log.With("subsystem", "ledger"), granters
	cfg.ContractCheck = settle.CheckContract
	l, err := ledger.Open(cfg)
	if err != nil {
		return nil, err
	}
	e.onClose(l.Close)
	s := &ledgerSys{ledger: l, slice: e.cfg.Ledger.SliceDuration()}
	if node != nil {
		sc := ledger.DefaultSyncConfig()
		sc.Interval = e.cfg.Ledger.AntiEntropyDuration()
		a, err := ledgerp2p.New(ctx, l, node, ledgerp2p.Config{Sync: sc, Log: cfg.Log})
		if err != nil {
			return nil, err
		}
		s.net = a
		e.onClose(a.Close)
	}
	s.checkpointer = ledger.NewCheckpointer(l, e.cfg.Ledger.CheckpointInterval())
	if signer != nil {
		s.checkpointer.Start(ctx)
	}
	e.onClose(s.checkpointer.Close)
	(&ledgerapi.Handlers{Ledger: l, PrivateGrid: e.cfg.Node.Grid != "", Log: cfg.Log}).Routes(e.api)
	return s, nil
}

// status fills the "ledger" section of GET /v1/status.
func (s *ledgerSys) status(st *api.Status) {
	st.Ledger = &api.LedgerStatus{Entries: s.ledger.Len(), Root: s.ledger.RootHex(), Slice: s.slice.String()}
}

// latestEpoch returns the highest contract epoch known for instance.
func (s *ledgerSys) latestEpoch(instance string) (uint64, bool) {
	_, ep, ok := s.ledger.LatestEpoch(instance)
	return ep, ok
}

// latestContract returns the highest-epoch contract known for instance
// that is agreed by both sides (the ledger's ContractCheck).
func (s *ledgerSys) latestContract(instance string) (ledger.Contract, bool) {
	id, _, ok := s.ledger.LatestEpoch(instance)
	if !ok {
		return ledger.Contract{}, false
	}
	e, ok := s.ledger.Get(id)
	if !ok {
		return ledger.Contract{}, false
	}
	c, ok := e.Value().(ledger.Contract)
	return c, ok
}

// newBilling starts the ledger's billing loop: the bridge between the
// ledger and the market, built after both (and after the partitions, whose
// metering it bills). As a provider it bills each slice of the instances
// this node hosts from the partitions' usage; as a requester it
// acknowledges or disputes receipts by the market's view of the instance
// and the membership (settle.Reach).
func newBilling(ctx context.Context, e env, led *ledgerSys, parts *partition.Manager, m *scheduler.Market, node *p2p.Node) *ledger.Biller {
	reach := settle.Reach{Instances: m.Instances, Alive: func() map[peer.ID]bool {
		alive := map[peer.ID]bool{}
		for _, mem := range node.Members() {
			if mem.State == p2p.StateAlive {
				alive[mem.ID] = true
			}
		}
		return alive
	}, SliceHealth: m.SliceHealth}
	b := ledger.NewBiller(led.ledger, partitionUsage{parts}, reach, settle.BillerConfig(led.net != nil, led.slice))
	b.Start(ctx)
	e.onClose(b.Close)
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); stopEndsLoop(sctx, e.log, led.ledger, m) }()
	e.onClose(func() error { cancel(); <-done; return nil })
	return b
}

// stopEndsInterval is how often the requester's ends of billing for the
// instances it asked to stop or destroy are written (settle.StopEnds).
const stopEndsInterval = time.Second

// stopEndsLoop writes, as requester, the end of billing of each contract
// whose instance it asked to stop or destroy (settle.StopEnds): its host
// bills no slice that began after it, whatever the host claims. An end
// already in the ledger at or before it (the host's, at the stop) makes it
// a no-op.
func stopEndsLoop(ctx context.Context, log *slog.Logger, l *ledger.Ledger, m *scheduler.Market) {
	t := time.NewTicker(stopEndsInterval)
	defer t.Stop()
	written := map[settle.StopEnd]bool{}
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		want := map[settle.StopEnd]bool{}
		for _, e := range settle.StopEnds(m.Instances()) {
			want[e] = true
			if written[e] {
				continue
			}
			if _, err := l.EndSpan(ctx, e.Instance, e.Epoch, e.At, e.State, e.Reason); err != nil {
				log.Warn("ledger: requester's end of billing", "instance", e.Instance, "err", err)
				continue
			}
			// Done once the contract is in the ledger with an end at or
			// before e.At (EndSpan writes nothing before the contract
			// arrives: try again next tick).
			if l.Ended(e.Instance, e.Epoch, e.At) {
				written[e] = true
			}
		}
		for e := range written {
			if !want[e] {
				delete(written, e)
			}
		}
	}
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
