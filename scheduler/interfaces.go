package scheduler

import (
	"context"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/weftgrid/weft/recipes/clock"
)

// Inbound is a message received by the transport.
type Inbound struct {
	// From is the peer the transport received it from (authenticated by
	// the transport; used for penalties, not for trust: every message is
	// checked against its own signature).
	From peer.ID
	// Data is the encoded envelope (Signed.Encode).
	Data []byte
}

// Transport carries market messages. The daemon adapts it to libp2p:
// Broadcast publishes on the grid's request topic (gossipsub), Send opens a
// direct stream. Implementations may block while sending (the market calls
// them from its sender goroutines, never from its state loop) and must be
// safe for concurrent use.
type Transport interface {
	// Broadcast publishes an announcement to every member.
	Broadcast(ctx context.Context, data []byte) error
	// Send delivers data to one peer.
	Send(ctx context.Context, to peer.ID, data []byte) error
	// Inbound yields what other peers sent (broadcast or direct). It is
	// read by one goroutine until the market closes.
	Inbound() <-chan Inbound
}

// Member is a live member of the grid.
type Member struct {
	ID     peer.ID
	Advert Advert
	// Unreachable: alive in the membership (others reach it), but this
	// node's streams to it fail. The market takes it for no candidate and
	// a host of its for lost; it still counts as alive where the decision
	// must agree with the rest of the grid (whether a requester is gone
	// and its guardians act).
	Unreachable bool
	// UnreachableSince, with Unreachable, is when this node last failed
	// to reach it first (the host counts as lost since then: the grace
	// runs from it).
	UnreachableSince time.Time
}

// Membership is the grid's failure detector and advert store (memberlist
// in the daemon). Safe for concurrent use; calls must be fast.
type Membership interface {
	// Members returns the members currently alive, including this node
	// (those this node cannot reach by stream marked Unreachable).
	Members() []Member
	// RTT returns the measured round-trip time to a peer.
	RTT(id peer.ID) (time.Duration, bool)
}

// InstanceSpec is what a host runs: the desired state of one instance.
type InstanceSpec struct {
	Instance     InstanceID        `json:"instance_id"`
	Name         string            `json:"name"`
	Requester    peer.ID           `json:"requester"`
	RecipeCID    string            `json:"recipe_cid"`
	SoftwareType string            `json:"software_type,omitempty"`
	Params       map[string]string `json:"params,omitempty"`
	Resources    Resources         `json:"resources"`
	// State is started, stopped or destroyed.
	State      State  `json:"state"`
	Epoch      uint64 `json:"epoch"`
	Generation uint64 `json:"generation"`
	Batch      bool   `json:"batch,omitempty"`
}

// RunStatus is what the runner reports about an instance.
type RunStatus struct {
	// State: pending (installing/starting, promises not yet passing),
	// started, stopped, destroyed, failed or done (batch).
	State      State
	Connection map[string]string
	Reason     string
	// Result is a batch job's result CID.
	Result string
	// Health, Restarts and LastExit: see Status.
	Health   Health
	Restarts uint32
	LastExit string
}

// Runner runs instances in local partitions (the partition package, adapted
// by the daemon). Safe for concurrent use.
type Runner interface {
	// Apply makes an instance converge to spec (idempotent; destroyed frees
	// the partition). It may take long (install); the market calls it from
	// its own goroutine.
	Apply(ctx context.Context, spec InstanceSpec) error
	// Status reports an instance's current state (false if unknown).
	Status(id InstanceID) (RunStatus, bool)
	// Capacity returns the node's total and free resources and free partitions.
	Capacity() (total, free Resources, freePartitions int)
}

// ContractSink receives every contract this node is party to (as
// auctioneer or provider): the ledger, adapted by the daemon.
type ContractSink interface {
	RecordContract(ctx context.Context, c *Contract) error
}

// BalanceLookup gives a requester's balance in the ledger, for the
// credit-limit policy. Calls must be fast.
type BalanceLookup interface {
	Balance(requester peer.ID) (Amount, bool)
}

// VetoHook may veto a bid (the daemon runs the configured hook command
// with the announcement as input). It is called from its own goroutine.
type VetoHook interface {
	Veto(ctx context.Context, ann *Announcement) (allow bool, reason string, err error)
}

// Clock gives the time and the market's ticks: the market reads time only
// through it. Tests inject a fake; the default is clock.System(). It is
// the part of clock.Clock the market needs: every clock.Clock (System,
// clock.Fake) is one.
type Clock interface {
	Now() time.Time
	// NewTicker returns a ticker firing every d on this clock.
	NewTicker(d time.Duration) Ticker
}

// Ticker is a Clock's ticker (time.Ticker on the system clock).
type Ticker = clock.Ticker

var _ Clock = clock.Clock(nil)
