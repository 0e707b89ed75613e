package daemon

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/weftgrid/weft/cmd/weft/internal/api"
	"github.com/weftgrid/weft/cmd/weft/internal/config"
	"github.com/weftgrid/weft/cmd/weft/internal/ledgerapi"
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

	(&ledgerapi.Handlers{Ledger: l, PrivateGrid: d.cfg.Node.Grid != "", Log: cfg.Log}).Routes(d.api)
	d.statusExtras = append(d.statusExtras, func(st *api.Status) {
		st.Ledger = &api.LedgerStatus{Entries: l.Len(), Root: l.RootHex(), Slice: d.ledgerSlice().String()}
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
