// Package simnet runs many scheduler Markets in one process over an
// in-memory network: per-link latencies, partitions, nodes that go down and
// come back, a membership that sees exactly the nodes reachable, and a fake
// runner that starts instances at once. Keys and auction IDs come from a
// seeded source, so runs are repeatable; run it inside testing/synctest to
// make latencies and timers virtual.
//
// # Usage
//
//	net := simnet.New(simnet.Options{Seed: 1})
//	defer net.Close()
//	nodes := net.AddNodes(ctx, 20, func(i int) simnet.NodeOptions { return simnet.NodeOptions{} })
//	v, err := nodes[0].Market.Request(ctx, spec)
//
// # Concurrency
//
// Network and Node methods are safe for concurrent use. Delivery is
// asynchronous (a goroutine per delayed message, or immediate into the
// receiver's bounded inbox); a full inbox drops the message, as a real
// network may.
package simnet

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/weftgrid/weft/scheduler"
)

// Options configure a Network.
type Options struct {
	// Seed makes keys and auction IDs repeatable.
	Seed uint64
	// InboxSize bounds each node's inbox (default 8192).
	InboxSize int
	// Latency is the default one-way latency of every link (default 0).
	Latency time.Duration
}

// Network is the in-memory network and membership of a simulated grid.
type Network struct {
	opts Options
	mu   sync.Mutex
	rng  *rand.ChaCha8
	// nodes in creation order.
	nodes   []*Node
	byID    map[peer.ID]*Node
	latency map[[2]peer.ID]time.Duration
	cut     map[[2]peer.ID]bool
	delay   func(from, to peer.ID, data []byte) time.Duration

	// Delivered and Lost count messages.
	Delivered, Lost atomic.Uint64
}

// New returns an empty network.
func New(opts Options) *Network {
	if opts.InboxSize <= 0 {
		opts.InboxSize = 8192
	}
	var seed [32]byte
	for i := range 8 {
		seed[i] = byte(opts.Seed >> (8 * i))
	}
	return &Network{opts: opts, rng: rand.NewChaCha8(seed), byID: map[peer.ID]*Node{},
		latency: map[[2]peer.ID]time.Duration{}, cut: map[[2]peer.ID]bool{}}
}

// NodeOptions configure one node.
type NodeOptions struct {
	// Config is the market config (zero: scheduler.DefaultConfig()).
	Config *scheduler.Config
	// Capacity of the fake runner (zero: 4 cores, 8 GiB, 100 GiB, 16 partitions).
	Capacity   scheduler.Resources
	Partitions int
	// Labels the node advertises (also its policy labels).
	Labels map[string]string
	// Prices overrides the policy's price list when set.
	Prices *scheduler.PriceList
	// Contracts, Balances and Veto are passed to the market.
	Contracts scheduler.ContractSink
	Balances  scheduler.BalanceLookup
	Veto      scheduler.VetoHook
	// Log receives the market's logs (default: discarded).
	Log *slog.Logger
	// Clock is the market's clock (default: the system clock, which is
	// the bubble's inside testing/synctest).
	Clock scheduler.Clock
	// Persist gives the node an in-memory Store that survives Crash/Restart.
	Persist bool
	// Store, when set, is the node's store (instead of Persist's).
	Store scheduler.Store
}

// Node is one simulated node.
type Node struct {
	net    *Network
	ID     peer.ID
	Key    crypto.PrivKey
	Market *scheduler.Market
	Runner *Runner
	labels map[string]string
	inbox  chan scheduler.Inbound
	up     atomic.Bool
	// hole: direct messages to the node hang until the sender gives up.
	hole atomic.Bool
	cfg  scheduler.Config
	deps scheduler.Deps
	// Store is the node's store (nil unless NodeOptions.Persist).
	Store *MemStore
}

// reader adapts the network's seeded source to io.Reader (under its lock).
type reader struct{ n *Network }

func (r reader) Read(p []byte) (int, error) {
	r.n.mu.Lock()
	defer r.n.mu.Unlock()
	_, _ = r.n.rng.Read(p)
	return len(p), nil
}

// AddNode creates, starts and connects a node.
func (n *Network) AddNode(ctx context.Context, o NodeOptions) (*Node, error) {
	key, _, err := crypto.GenerateEd25519Key(reader{n})
	if err != nil {
		return nil, err
	}
	id, err := peer.IDFromPrivateKey(key)
	if err != nil {
		return nil, err
	}
	cfg := scheduler.DefaultConfig()
	if o.Config != nil {
		cfg = *o.Config
	}
	if o.Labels != nil {
		cfg.Policy.Labels = o.Labels
	}
	if o.Prices != nil {
		cfg.Policy.Prices = *o.Prices
	}
	capacity := o.Capacity
	if capacity == (scheduler.Resources{}) {
		capacity = scheduler.Resources{CPUMillis: 4000, MemoryBytes: 8 << 30, DiskBytes: 100 << 30}
	}
	parts := o.Partitions
	if parts == 0 {
		parts = 16
	}
	node := &Node{net: n, ID: id, Key: key, labels: cfg.Policy.Labels, inbox: make(chan scheduler.Inbound, n.opts.InboxSize),
		Runner: NewRunner(id, capacity, parts)}
	node.up.Store(true)
	node.cfg = cfg
	node.deps = scheduler.Deps{
		Transport: (*transport)(node), Membership: (*membership)(node), Runner: node.Runner,
		Contracts: o.Contracts, Balances: o.Balances, Veto: o.Veto, Rand: reader{n}, Log: o.Log, Clock: o.Clock,
	}
	if o.Persist {
		node.Store = NewMemStore()
		node.deps.Store = node.Store
	}
	if o.Store != nil {
		node.deps.Store = o.Store
	}
	m, err := scheduler.New(cfg, key, node.deps)
	if err != nil {
		return nil, err
	}
	node.Market = m
	n.mu.Lock()
	n.nodes = append(n.nodes, node)
	n.byID[id] = node
	n.mu.Unlock()
	if err := m.Start(ctx); err != nil {
		return nil, err
	}
	return node, nil
}

// AddNodes adds count nodes; opts(i) gives each node's options.
func (n *Network) AddNodes(ctx context.Context, count int, opts func(i int) NodeOptions) ([]*Node, error) {
	out := make([]*Node, 0, count)
	for i := range count {
		o := NodeOptions{}
		if opts != nil {
			o = opts(i)
		}
		node, err := n.AddNode(ctx, o)
		if err != nil {
			return nil, err
		}
		out = append(out, node)
	}
	return out, nil
}

// Nodes returns the nodes in creation order.
func (n *Network) Nodes() []*Node {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.nodes)
}

// Node returns a node by ID.
func (n *Network) Node(id peer.ID) *Node {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.byID[id]
}

// Close closes every market.
func (n *Network) Close() {
	for _, node := range n.Nodes() {
		if node.Market != nil {
			_ = node.Market.Close()
		}
	}
}

func link(a, b peer.ID) [2]peer.ID {
	if a > b {
		a, b = b, a
	}
	return [2]peer.ID{a, b}
}

// SetLatency sets the one-way latency of the link a–b.
func (n *Network) SetLatency(a, b peer.ID, d time.Duration) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.latency[link(a, b)] = d
}

// Latency returns the one-way latency of the link a–b.
func (n *Network) Latency(a, b peer.ID) time.Duration {
	n.mu.Lock()
	defer n.mu.Unlock()
	if d, ok := n.latency[link(a, b)]; ok {
		return d
	}
	return n.opts.Latency
}

// SetDelay installs fn, which adds a delay to each message sent from now
// on (a slow path for one kind of message, or one direction of a link);
// nil removes it. fn runs on the sender's goroutine and must not block.
func (n *Network) SetDelay(fn func(from, to peer.ID, data []byte) time.Duration) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.delay = fn
}

// Partition cuts every link between the two groups.
func (n *Network) Partition(a, b []peer.ID) {
	n.mu.Lock()
	for _, x := range a {
		for _, y := range b {
			if x != y {
				n.cut[link(x, y)] = true
			}
		}
	}
	n.mu.Unlock()
	n.membershipChanged()
}

// Heal restores every cut link.
func (n *Network) Heal() {
	n.mu.Lock()
	clear(n.cut)
	n.mu.Unlock()
	n.membershipChanged()
}

// Reachable reports whether a can talk to b now.
func (n *Network) Reachable(a, b peer.ID) bool {
	if a == b {
		return true
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	na, nb := n.byID[a], n.byID[b]
	return na != nil && nb != nil && na.up.Load() && nb.up.Load() && !n.cut[link(a, b)]
}

// Down takes a node off the network: it neither sends nor receives, and the
// others' membership declares it dead. Its market and runner keep their
// state (and its instances keep running): a crash of the host as seen by
// the grid, or a partition of one.
func (node *Node) Down() {
	node.up.Store(false)
	node.net.membershipChanged()
}

func (n *Network) membershipChanged() {
	for _, node := range n.Nodes() {
		if node.Market != nil {
			node.Market.MembershipChanged()
		}
	}
}

// Crash takes the node off the network and closes its market: its memory
// is lost, its runner's instances keep running (as partitions do across a
// daemon restart), its Store (if any) is kept.
func (node *Node) Crash() {
	_ = node.Market.Close()
	node.Down()
}

// Restart starts a fresh market with the same key, runner and store, and
// puts the node back on the network.
func (node *Node) Restart(ctx context.Context) error {
	for {
		select {
		case <-node.inbox: // what arrived while it was down is lost
			continue
		default:
		}
		break
	}
	m, err := scheduler.New(node.cfg, node.Key, node.deps)
	if err != nil {
		return err
	}
	node.net.mu.Lock()
	node.Market = m
	node.net.mu.Unlock()
	if err := m.Start(ctx); err != nil {
		return err
	}
	node.Up()
	return nil
}

// Up puts a node back on the network.
func (node *Node) Up() {
	node.up.Store(true)
	node.net.membershipChanged()
}

// BlackHole makes the node a black hole (on) or heals it (off): it stays a
// member (its membership still looks alive, as a peer whose connection
// died without a word does), but a direct message sent to it hangs until
// the sender's context ends, and announcements never reach it.
func (node *Node) BlackHole(on bool) { node.hole.Store(on) }

// IsUp reports whether the node is on the network.
func (node *Node) IsUp() bool { return node.up.Load() }

func (n *Network) deliver(from, to peer.ID, data []byte) {
	if dst := n.Node(to); !n.Reachable(from, to) || dst.hole.Load() {
		n.Lost.Add(1)
		return
	}
	dst := n.Node(to)
	d := n.Latency(from, to)
	n.mu.Lock()
	extra := n.delay
	n.mu.Unlock()
	if extra != nil {
		d += extra(from, to, data)
	}
	put := func() {
		if !n.Reachable(from, to) {
			n.Lost.Add(1)
			return
		}
		select {
		case dst.inbox <- scheduler.Inbound{From: from, Data: data}:
			n.Delivered.Add(1)
		default:
			n.Lost.Add(1)
		}
	}
	if d <= 0 {
		put()
		return
	}
	time.AfterFunc(d, put)
}

type transport Node

var _ scheduler.Transport = (*transport)(nil)

func (t *transport) Broadcast(ctx context.Context, data []byte) error {
	node := (*Node)(t)
	if !node.up.Load() {
		return fmt.Errorf("simnet: %s is down", node.ID)
	}
	for _, other := range node.net.Nodes() {
		if other != node {
			node.net.deliver(node.ID, other.ID, data)
		}
	}
	return nil
}

func (t *transport) Send(ctx context.Context, to peer.ID, data []byte) error {
	node := (*Node)(t)
	if !node.up.Load() {
		return fmt.Errorf("simnet: %s is down", node.ID)
	}
	if dst := node.net.Node(to); dst != nil && dst.hole.Load() && node.net.Reachable(node.ID, to) {
		node.net.Lost.Add(1)
		<-ctx.Done()
		return ctx.Err()
	}
	node.net.deliver(node.ID, to, data)
	return nil
}

func (t *transport) Inbound() <-chan scheduler.Inbound { return t.inbox }

type membership Node

var _ scheduler.Membership = (*membership)(nil)

func (mb *membership) Members() []scheduler.Member {
	node := (*Node)(mb)
	var out []scheduler.Member
	for _, other := range node.net.Nodes() {
		if node.net.Reachable(node.ID, other.ID) {
			total, free, parts := other.Runner.Capacity()
			out = append(out, scheduler.Member{ID: other.ID, Advert: scheduler.Advert{
				Capacity: total, Free: free, FreePartitions: parts, Labels: other.labels}})
		}
	}
	return out
}

func (mb *membership) RTT(id peer.ID) (time.Duration, bool) {
	node := (*Node)(mb)
	if !node.net.Reachable(node.ID, id) {
		return 0, false
	}
	return 2 * node.net.Latency(node.ID, id), true
}

// Serving returns the up-or-down nodes whose runner has the instance
// started (a copy that would serve and bill).
func (n *Network) Serving(id scheduler.InstanceID) []peer.ID {
	var out []peer.ID
	for _, node := range n.Nodes() {
		if st, ok := node.Runner.Status(id); ok && st.State == scheduler.StateStarted {
			out = append(out, node.ID)
		}
	}
	return out
}
