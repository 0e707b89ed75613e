package scheduler

import (
	"context"
	"encoding/hex"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// InstanceView is an instance as its requester (or a guardian) sees it:
// the JSON object of `weft request --json` and `weft instance`.
type InstanceView struct {
	Name       string     `json:"name"`
	InstanceID InstanceID `json:"instance_id"`
	Requester  string     `json:"requester"`
	// Node is the host's peer ID ("" while unplaced; for a destroyed
	// instance, the host it ran on).
	Node string `json:"node"`
	// State is the observed state: pending, started, stopped, destroyed,
	// failed, waiting or done.
	State          State             `json:"state"`
	RequestedState State             `json:"requested_state"`
	Connection     map[string]string `json:"connection"`
	Epoch          uint64            `json:"epoch"`
	Generation     uint64            `json:"generation"`
	// StatusGeneration is the generation of the request the host's last
	// status reflects (0 before any): State and Connection describe the
	// latest request once StatusGeneration >= Generation.
	StatusGeneration uint64 `json:"status_generation"`
	// Reason explains a failed, waiting or pending state ("" otherwise;
	// always present).
	Reason string `json:"reason"`
	// Health is the host's verdict: ok (running, promises passing),
	// failing (a promise failing, crash-looping, failed) or unknown.
	Health Health `json:"health"`
	// Restarts counts the process restarts of the current run (0 when
	// none or unknown).
	Restarts uint32 `json:"restarts"`
	// LastExit describes the last process exit (null when none).
	LastExit     *string   `json:"last_exit"`
	Result       string    `json:"result,omitempty"`
	RecipeCID    string    `json:"recipe_cid"`
	SoftwareType string    `json:"software_type,omitempty"`
	Resources    Resources `json:"resources"`
	Guardians    []string  `json:"guardians,omitempty"`
	Batch        bool      `json:"batch,omitempty"`
	Retries      int       `json:"retries,omitempty"`
	// Mine is false for instances this node guards for another requester.
	Mine      bool      `json:"mine"`
	UpdatedAt time.Time `json:"updated_at"`
	// RequestedAt is when the requester signed the request in effect (its
	// Timestamp): for a stopped or destroyed instance, when it was asked
	// to stop.
	RequestedAt time.Time `json:"requested_at"`
}

// HostedView is an instance this node hosts.
type HostedView struct {
	Name       string     `json:"name"`
	InstanceID InstanceID `json:"instance_id"`
	Requester  string     `json:"requester"`
	Epoch      uint64     `json:"epoch"`
	State      State      `json:"state"`
	// Fenced: a newer contract won; the copy is being destroyed and billed no more.
	Fenced     bool              `json:"fenced"`
	Connection map[string]string `json:"connection"`
	Reason     string            `json:"reason,omitempty"`
	Price      Amount            `json:"price_per_hour"`
}

// BidView is one bid in an AuctionView.
type BidView struct {
	Node  string `json:"node"`
	Price Amount `json:"price"`
	Fit   int    `json:"fit"`
	RTTms int64  `json:"rtt_ms"`
}

// DeclineView is one decline in an AuctionView.
type DeclineView struct {
	Node   string `json:"node"`
	Reason string `json:"reason"`
}

// AuctionView is an auction this node ran (GET /v1/auctions).
type AuctionView struct {
	ID          string        `json:"id"`
	Request     string        `json:"request"`
	InstanceID  InstanceID    `json:"instance_id"`
	Epoch       uint64        `json:"epoch"`
	Reason      string        `json:"reason"`
	Phase       string        `json:"phase"`
	OpenedAt    time.Time     `json:"opened_at"`
	ClosedAt    *time.Time    `json:"closed_at,omitempty"`
	Bids        []BidView     `json:"bids"`
	Declines    []DeclineView `json:"declines"`
	Winner      string        `json:"winner,omitempty"`
	Explanation string        `json:"explanation,omitempty"`
}

// EventKind says what happened.
type EventKind uint8

// Event kinds.
const (
	EventRequested EventKind = iota
	EventPlaced
	EventUnplaced
	EventStatus
	EventHosting
	EventFenced
)

// String returns the kind's name.
func (k EventKind) String() string {
	return [...]string{"requested", "placed", "unplaced", "status", "hosting", "fenced"}[k]
}

// Event is reported to observers (dashboard, SSE).
type Event struct {
	Kind     EventKind    `json:"kind"`
	Instance InstanceView `json:"instance,omitzero"`
	Hosted   HostedView   `json:"hosted,omitzero"`
	Reason   string       `json:"reason,omitempty"`
	// Auction is the auction behind a placement (EventPlaced) or a failed
	// placement (EventUnplaced), when this node ran it.
	Auction *AuctionView `json:"auction,omitempty"`
	// Contract sums up the contract of an EventPlaced (nil otherwise).
	Contract *ContractSummary `json:"contract,omitempty"`
}

// ContractSummary is what an event says of a contract: its host, epoch,
// price and who awarded it.
type ContractSummary struct {
	Node       string `json:"node"`
	Epoch      uint64 `json:"epoch"`
	Price      Amount `json:"price_per_hour"`
	Auctioneer string `json:"auctioneer"`
}

func (m *Market) view(rec *record) InstanceView {
	req := rec.req
	v := InstanceView{
		Name: req.Name, InstanceID: req.Instance, Requester: req.Requester.String(),
		RequestedState: req.State, RequestedAt: time.Unix(0, req.Timestamp), Connection: map[string]string{}, Generation: req.Generation,
		RecipeCID: req.RecipeCID, SoftwareType: req.SoftwareType, Resources: req.Resources,
		Batch: req.Batch, Retries: rec.retries, Mine: rec.mine, UpdatedAt: rec.updated,
	}
	for _, g := range req.Delegation.Guardians {
		v.Guardians = append(v.Guardians, g.String())
	}
	if rec.contract != nil {
		v.Node = rec.contract.Provider().String()
		v.Epoch = rec.contract.Epoch()
	} else if rec.lastHost != "" && req.State == StateDestroyed {
		v.Node, v.Epoch = rec.lastHost.String(), rec.lastEpoch // where it ran
	}
	switch {
	case rec.auction != nil:
		v.State = StatePending
		v.Reason = "auction open (" + rec.auction.reason + ")"
	case rec.contract == nil && req.State == StateDestroyed:
		v.State = StateDestroyed
	case rec.contract == nil && rec.failed != "":
		v.State, v.Reason = StateFailed, rec.failed
		if req.WaitForCapacity {
			v.State = StateWaiting
		}
	case rec.contract == nil:
		v.State = StatePending
	case rec.status == nil:
		v.State = StatePending
		v.Reason = "placed; waiting for the host's status"
	default:
		v.State = rec.status.State
		v.StatusGeneration = rec.status.Applied
		v.Reason = rec.status.Reason
		v.Result = rec.status.Result
		v.Health, v.Restarts = statusHealth(rec.status), rec.status.Restarts
		if rec.status.LastExit != "" {
			le := rec.status.LastExit
			v.LastExit = &le
		}
		if rec.status.Connection != nil {
			v.Connection = maps.Clone(rec.status.Connection)
		}
		if !rec.lostSince.IsZero() {
			v.Reason = "host lost; re-placing"
			if rec.status.Draining {
				v.Reason = "host draining; re-placing"
			}
		}
	}
	return v
}

func (m *Market) hostedView(h *hosted) HostedView {
	v := HostedView{Name: h.req.Name, InstanceID: h.req.Instance, Requester: h.req.Requester.String(),
		Epoch: h.contract.Epoch(), State: h.last.State, Fenced: h.fenced, Connection: map[string]string{},
		Reason: h.last.Reason, Price: h.contract.Info().Bid.Total}
	if h.last.Connection != nil {
		v.Connection = maps.Clone(h.last.Connection)
	}
	return v
}

func auctionView(run *auctionRun) AuctionView {
	a := run.a
	v := AuctionView{ID: hex.EncodeToString(a.ID), Request: run.request, InstanceID: a.Ann.Instance, Epoch: a.Ann.Epoch,
		Reason: run.reason, Phase: a.Phase.String(), OpenedAt: a.Opened, Bids: []BidView{}, Declines: []DeclineView{},
		Explanation: a.Explanation}
	if !a.Closed.IsZero() {
		t := a.Closed
		v.ClosedAt = &t
	}
	for _, b := range a.Bids() {
		v.Bids = append(v.Bids, BidView{Node: b.Bidder.String(), Price: b.Bid.Total, Fit: b.Bid.Fit, RTTms: b.RTT.Milliseconds()})
	}
	for _, d := range a.Declines() {
		v.Declines = append(v.Declines, DeclineView{Node: d.Node.String(), Reason: d.Text})
	}
	if a.Winner != "" {
		v.Winner = a.Winner.String()
	}
	return v
}

// Instances returns the instances this node requested (and those it
// guards, with Mine false), sorted by name.
func (m *Market) Instances() []InstanceView {
	var out []InstanceView
	_ = m.do(context.Background(), func() {
		for _, rec := range m.records {
			out = append(out, m.view(rec))
		}
	})
	slices.SortFunc(out, func(a, b InstanceView) int {
		if a.Mine != b.Mine {
			if a.Mine {
				return -1
			}
			return 1
		}
		return strings.Compare(a.Name, b.Name)
	})
	if out == nil {
		out = []InstanceView{}
	}
	return out
}

// Instance returns this node's instance by name.
func (m *Market) Instance(name string) (InstanceView, error) {
	var v InstanceView
	found := false
	if err := m.do(context.Background(), func() {
		if rec := m.records[NewInstanceID(m.self, name)]; rec != nil {
			v, found = m.view(rec), true
		}
	}); err != nil {
		return v, err
	}
	if !found {
		return v, ErrNotFound
	}
	return v, nil
}

// Hosted returns the instances this node hosts.
func (m *Market) Hosted() []HostedView {
	out := []HostedView{}
	_ = m.do(context.Background(), func() {
		for _, h := range m.hosted {
			out = append(out, m.hostedView(h))
		}
	})
	slices.SortFunc(out, func(a, b HostedView) int { return strings.Compare(string(a.InstanceID), string(b.InstanceID)) })
	return out
}

// Auctions returns the auctions this node ran: open ones and the recent
// finished ones, oldest first.
func (m *Market) Auctions() []AuctionView {
	out := []AuctionView{}
	_ = m.do(context.Background(), func() {
		for _, run := range m.history {
			out = append(out, auctionView(run))
		}
		for _, run := range m.auctions {
			out = append(out, auctionView(run))
		}
	})
	slices.SortStableFunc(out, func(a, b AuctionView) int { return a.OpenedAt.Compare(b.OpenedAt) })
	return out
}

// Contract returns the current contract of an instance this node tracks
// or hosts (nil if none).
func (m *Market) Contract(id InstanceID) *Contract {
	var c *Contract
	_ = m.do(context.Background(), func() { c = m.best[id] })
	return c
}

// HostedAccess reports who may reach the ports of the instance id that
// this node hosts: its requester and the guardians its request delegates
// to, while the delegation lasts (none after its Expires). ok is false when the node does not host it, or hosts a copy that is
// fenced or not confirmed yet.
func (m *Market) HostedAccess(ctx context.Context, id InstanceID) (requester peer.ID, delegates []peer.ID, ok bool) {
	_ = m.do(ctx, func() {
		h := m.hosted[id]
		if h == nil || h.fenced || !h.confirmed {
			return
		}
		requester, ok = h.req.Requester, true
		if d := h.req.Delegation; d.Expires == 0 || m.d.Clock.Now().UnixNano() < d.Expires {
			delegates = slices.Clone(d.Guardians) // only while the delegation lasts
		}
	})
	return requester, delegates, ok
}

// statusHealth is the health a host's status says: failing when the host
// says so or the instance failed, ok when started, unknown otherwise.
func statusHealth(st *Status) Health {
	switch {
	case st.Health == HealthFailing || st.State == StateFailed:
		return HealthFailing
	case st.State == StateStarted:
		return HealthOK
	}
	return HealthUnknown
}
