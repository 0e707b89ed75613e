package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/weftgrid/weft/ledger/settle"
	"github.com/weftgrid/weft/p2p"
	"github.com/weftgrid/weft/scheduler"
)

// nodeMembership is the market's Membership over the p2p node's memberlist:
// alive members with their adverts, and libp2p's measured RTTs.
type nodeMembership struct{ n *p2p.Node }

var _ scheduler.Membership = nodeMembership{}

// Members returns the alive members (self included) with their adverts.
func (m nodeMembership) Members() []scheduler.Member {
	ms := m.n.Members()
	out := make([]scheduler.Member, 0, len(ms))
	for _, mem := range ms {
		if mem.State != p2p.StateAlive {
			continue
		}
		out = append(out, scheduler.Member{ID: mem.ID, Advert: schedAdvert(mem.Advert)})
	}
	return out
}

// RTT returns libp2p's moving average of the round trip to id.
func (m nodeMembership) RTT(id peer.ID) (time.Duration, bool) {
	if id == m.n.ID() {
		return 0, true
	}
	d := m.n.RTT(id)
	return d, d > 0
}

// schedAdvert maps a p2p advert (what the node offers now) to the market's.
func schedAdvert(a p2p.Advert) scheduler.Advert {
	r := scheduler.Resources{CPUMillis: a.CPUMillis, MemoryBytes: a.MemoryBytes, DiskBytes: a.DiskBytes}
	return scheduler.Advert{Capacity: r, Free: r, FreePartitions: a.FreePartitions, Labels: a.Labels}
}

// ledgerContracts records the market's contracts in the ledger, once per
// contract and node (a node that hosts its own request is told twice: as
// provider and as requester; two entries would make it bill twice).
type ledgerContracts struct {
	d    *Daemon
	mu   sync.Mutex
	seen map[string]bool // contract digests recorded by this run
}

var _ scheduler.ContractSink = (*ledgerContracts)(nil)

func newLedgerContracts(d *Daemon) *ledgerContracts {
	return &ledgerContracts{d: d, seen: map[string]bool{}}
}

// RecordContract appends c as a ledger contract entry, with the signed
// award and acceptance as evidence. Prices are the market's hourly list
// (micro-credits per core-hour, per GiB-hour of memory and of disk).
func (l *ledgerContracts) RecordContract(ctx context.Context, c *scheduler.Contract) error {
	if l.d.ledger == nil {
		return nil
	}
	key := string(c.Digest())
	l.mu.Lock()
	dup := l.seen[key]
	l.seen[key] = true
	l.mu.Unlock()
	if dup {
		return nil
	}
	_, err := l.d.appendContract(ctx, settle.Contract(c, l.d.ledgerSlice()))
	if err != nil {
		l.mu.Lock()
		delete(l.seen, key)
		l.mu.Unlock()
		if errors.Is(err, context.Canceled) {
			return nil
		}
	}
	return err
}

// ledgerBalances gives requesters' balances from the ledger.
type ledgerBalances struct{ d *Daemon }

var _ scheduler.BalanceLookup = ledgerBalances{}

// Balance returns the requester's ledger balance.
func (b ledgerBalances) Balance(p peer.ID) (scheduler.Amount, bool) {
	v, ok := b.d.ledgerBalance(p)
	return scheduler.Amount(v), ok
}

// commandVeto runs the configured hook command with the announcement as
// JSON on stdin: exit 0 allows; any other exit vetoes with the first line
// of the output as the reason.
type commandVeto struct {
	command string
	timeout time.Duration
}

var _ scheduler.VetoHook = commandVeto{}

// vetoInput is the JSON the hook reads.
type vetoInput struct {
	Instance     string              `json:"instance_id"`
	Name         string              `json:"name"`
	Requester    string              `json:"requester"`
	RecipeCID    string              `json:"recipe_cid"`
	SoftwareType string              `json:"software_type,omitempty"`
	Resources    scheduler.Resources `json:"resources"`
	Epoch        uint64              `json:"epoch"`
	Labels       map[string]string   `json:"labels,omitempty"`
	MaxPrice     scheduler.Amount    `json:"max_price,omitempty"`
}

// Veto runs the hook.
func (v commandVeto) Veto(ctx context.Context, a *scheduler.Announcement) (bool, string, error) {
	in, _ := json.Marshal(vetoInput{Instance: string(a.Instance), Name: a.Name, Requester: a.Requester.String(),
		RecipeCID: a.RecipeCID, SoftwareType: a.SoftwareType, Resources: a.Resources, Epoch: a.Epoch,
		Labels: a.Filter.Labels, MaxPrice: a.Filter.MaxPrice})
	if v.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, v.timeout)
		defer cancel()
	}
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", v.command)
	cmd.Stdin = bytes.NewReader(in)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = time.Second
	err := cmd.Run()
	if err == nil {
		return true, "", nil
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) && ctx.Err() == nil {
		line, _, _ := strings.Cut(strings.TrimSpace(out.String()), "\n")
		if line == "" {
			line = fmt.Sprintf("vetoed by hook (exit %d)", ee.ExitCode())
		}
		return false, line, nil
	}
	if ctx.Err() != nil {
		return false, "veto hook timed out", nil
	}
	return false, "", fmt.Errorf("market: veto hook: %w", err)
}
