package scheduler

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/weftgrid/weft/recipes/clock"
)

// Deps are what a Market talks to. Transport, Membership and Runner are
// required; the rest may be nil.
type Deps struct {
	Transport  Transport
	Membership Membership
	Runner     Runner
	Contracts  ContractSink
	Balances   BalanceLookup
	Veto       VetoHook
	Clock      Clock
	// Store, if set, keeps records and hosted contracts across restarts.
	Store Store
	// Rand is the source of auction IDs (default crypto/rand).
	Rand io.Reader
	Log  *slog.Logger
}

// Stats are a market's counters (monotonic).
type Stats struct {
	// Sent and Received count messages (a broadcast counts once when sent).
	Sent, Received uint64
	// Dropped counts inbound messages rejected (malformed, forged,
	// replayed, from penalized peers) and outbound ones over the queue bound.
	Dropped uint64
	// Placements counts contracts formed by this node as auctioneer.
	Placements uint64
	// Fenced counts local copies stopped because a newer contract won.
	Fenced uint64
	// Withdrawn counts local copies stopped because their award was
	// withdrawn (the accept came after it timed out).
	Withdrawn uint64
	// Delivered counts direct messages the transport took; SendFailed
	// the direct sends that failed or timed out.
	Delivered, SendFailed uint64
	// Queued is the number of direct messages waiting now, over all peers.
	Queued int
}

// Market is one node's market engine: requester, bidder, host and guardian
// at once. All mutable state belongs to one goroutine (the state loop);
// public methods hand it closures and wait.
type Market struct {
	cfg    Config
	signer *Signer
	self   peer.ID
	d      Deps
	log    *slog.Logger

	eval  chan func()
	kick  chan struct{}
	out   chan []byte // announcements, to the broadcaster
	local []Inbound

	// qmu guards queues: the direct messages waiting per peer, each
	// drained by its own sender goroutine while it is not empty.
	qmu    sync.Mutex
	queues map[peer.ID]*peerQueue
	cancel context.CancelFunc
	ctx    context.Context
	wg     sync.WaitGroup
	start  sync.Once
	close  sync.Once
	closed chan struct{}
	// io is the state loop's store writes and contract records, performed
	// by runEffects.
	io *effects

	sent, received, dropped, placements, fenced, withdrawn atomic.Uint64
	delivered, sendFailed                                  atomic.Uint64

	// State-loop-owned state below.
	records   map[InstanceID]*record
	auctions  map[string]*auctionRun
	history   []*auctionRun
	bidding   map[string]*bidState
	bidsBy    map[peer.ID]int // bidding entries per auctioneer ("": of non-members)
	guarded   map[peer.ID]int // guardian records per requester ("": of non-members)
	seen      map[string]time.Time
	hosted    map[InstanceID]*hosted
	best      map[InstanceID]*Contract
	penalty   map[peer.ID]int
	lastDecay time.Time
	live      map[peer.ID]Advert
	// members are the members alive in the membership, live ones and
	// those this node cannot reach by stream (Member.Unreachable).
	members map[peer.ID]bool
	// unreachSince holds, for the members this node cannot reach by
	// stream, since when (Member.UnreachableSince).
	unreachSince map[peer.ID]time.Time
	// capacityAt is when a live member last appeared or advertised more
	// free partitions: an auction that failed before it may succeed now,
	// so it is retried without waiting out its back-off.
	capacityAt time.Time
	// purged maps the instances purged since the start to the highest
	// epoch they had: later statuses of those contracts revive nothing.
	purged map[InstanceID]uint64
	// noBids: this node does not bid now (Config.NoBids, or SetBidding(false)).
	noBids      bool
	verified    map[[32]byte]*AwardInfo
	lastMembers time.Time
	changed     chan struct{}
	observers   map[int]func(Event)
	nextObs     int
}

// peerQueue is the direct messages waiting for one peer.
type peerQueue struct {
	msgs [][]byte
}

// New creates a market for the node whose key is key.
func New(cfg Config, key crypto.PrivKey, d Deps) (*Market, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if d.Transport == nil || d.Membership == nil || d.Runner == nil {
		return nil, fmt.Errorf("%w: transport, membership and runner are required", ErrInvalidRequest)
	}
	s, err := NewSigner(key)
	if err != nil {
		return nil, err
	}
	if d.Clock == nil {
		d.Clock = clock.System()
	}
	if d.Rand == nil {
		d.Rand = rand.Reader
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	return &Market{
		cfg: cfg, signer: s, self: s.ID(), d: d,
		log:     d.Log.With("peer", s.ID().String()),
		eval:    make(chan func()),
		kick:    make(chan struct{}, 1),
		out:     make(chan []byte, cfg.SendQueue),
		queues:  map[peer.ID]*peerQueue{},
		closed:  make(chan struct{}),
		io:      newEffects(),
		records: map[InstanceID]*record{}, auctions: map[string]*auctionRun{},
		bidding: map[string]*bidState{}, bidsBy: map[peer.ID]int{}, guarded: map[peer.ID]int{}, seen: map[string]time.Time{},
		hosted: map[InstanceID]*hosted{}, best: map[InstanceID]*Contract{},
		penalty: map[peer.ID]int{}, live: map[peer.ID]Advert{}, members: map[peer.ID]bool{}, verified: map[[32]byte]*AwardInfo{},
		changed: make(chan struct{}), observers: map[int]func(Event){},
		noBids: cfg.NoBids, purged: map[InstanceID]uint64{},
	}, nil
}

// SetBidding turns this node's bidding on or off (a drain turns it off).
// A node configured with NoBids never bids: SetBidding(true) leaves it off.
func (m *Market) SetBidding(ctx context.Context, on bool) error {
	return m.do(ctx, func() { m.noBids = !on || m.cfg.NoBids })
}

// Bidding reports whether this node bids on announcements now.
func (m *Market) Bidding(ctx context.Context) (bool, error) {
	var on bool
	err := m.do(ctx, func() { on = !m.noBids })
	return on, err
}

// ID returns this node's peer ID.
func (m *Market) ID() peer.ID { return m.self }

// Start starts the state loop and the sender goroutines. It returns at once.
func (m *Market) Start(ctx context.Context) error {
	started := false
	m.start.Do(func() {
		started = true
		m.ctx, m.cancel = context.WithCancel(ctx)
		m.lastDecay = m.d.Clock.Now()
		if err := m.restore(); err != nil {
			m.log.Warn("market: restore failed", "err", err)
		}
		for _, h := range m.hosted {
			m.applySpec(h, h.spec) // converge the runner to what the contracts say
		}
		go m.runEffects()
		m.wg.Add(1)
		go m.broadcaster()
		m.wg.Add(1)
		go m.loop()
	})
	if !started {
		return fmt.Errorf("%w: already started", ErrInvalidRequest)
	}
	return nil
}

// Close stops the market and waits for its goroutines. Idempotent.
func (m *Market) Close() error {
	m.close.Do(func() {
		if m.cancel != nil {
			m.cancel()
		}
		m.wg.Wait()
		if m.ctx != nil { // started: persist what the loop queued
			close(m.io.stop)
			<-m.io.done
		}
		close(m.closed)
	})
	return nil
}

// Stats returns the counters.
func (m *Market) Stats() Stats {
	return Stats{Sent: m.sent.Load(), Received: m.received.Load(), Dropped: m.dropped.Load(),
		Placements: m.placements.Load(), Fenced: m.fenced.Load(), Withdrawn: m.withdrawn.Load(),
		Delivered: m.delivered.Load(), SendFailed: m.sendFailed.Load(), Queued: m.queued()}
}

func (m *Market) queued() int {
	m.qmu.Lock()
	defer m.qmu.Unlock()
	n := 0
	for _, q := range m.queues {
		n += len(q.msgs)
	}
	return n
}

// broadcaster publishes the announcements, apart from direct messages.
func (m *Market) broadcaster() {
	defer m.wg.Done()
	for {
		select {
		case <-m.ctx.Done():
			return
		case data := <-m.out:
			ctx, cancel := context.WithTimeout(m.ctx, m.cfg.SendTimeout)
			err := m.d.Transport.Broadcast(ctx, data)
			cancel()
			if err != nil && m.ctx.Err() == nil {
				m.log.Debug("market: broadcast failed", "err", err)
			}
		}
	}
}

// enqueue adds data to to's queue, dropping the oldest message when it is
// full, and starts the peer's sender when it was idle.
func (m *Market) enqueue(to peer.ID, data []byte) {
	m.qmu.Lock()
	defer m.qmu.Unlock()
	if m.ctx.Err() != nil {
		m.dropped.Add(1)
		return
	}
	q := m.queues[to]
	if q != nil {
		if len(q.msgs) >= m.cfg.PeerQueue {
			q.msgs = q.msgs[1:]
			m.dropped.Add(1)
		}
		q.msgs = append(q.msgs, data)
		return
	}
	q = &peerQueue{msgs: [][]byte{data}}
	m.queues[to] = q
	m.wg.Add(1)
	go m.peerSender(to, q)
}

// peerSender sends q's messages to one peer in order, each within
// SendTimeout, and exits when the queue is empty. After a failed send,
// what queued up meanwhile is dropped: it is stale by now, and the market
// repeats what matters (statuses, outcome queries, re-auctions).
func (m *Market) peerSender(to peer.ID, q *peerQueue) {
	defer m.wg.Done()
	for {
		m.qmu.Lock()
		if len(q.msgs) == 0 || m.ctx.Err() != nil {
			m.dropped.Add(uint64(len(q.msgs)))
			delete(m.queues, to)
			m.qmu.Unlock()
			return
		}
		data := q.msgs[0]
		q.msgs = q.msgs[1:]
		m.qmu.Unlock()
		ctx, cancel := context.WithTimeout(m.ctx, m.cfg.SendTimeout)
		err := m.d.Transport.Send(ctx, to, data)
		cancel()
		if err == nil {
			m.delivered.Add(1)
			continue
		}
		if m.ctx.Err() != nil {
			continue
		}
		m.sendFailed.Add(1)
		m.qmu.Lock()
		m.dropped.Add(uint64(len(q.msgs)))
		q.msgs = nil
		m.qmu.Unlock()
		m.log.Debug("market: send failed", "to", to, "err", err)
	}
}

func (m *Market) loop() {
	defer m.wg.Done()
	t := m.d.Clock.NewTicker(m.cfg.Tick)
	defer t.Stop()
	in := m.d.Transport.Inbound()
	m.refreshMembers()
	for {
		select {
		case <-m.ctx.Done():
			return
		case msg, ok := <-in:
			if !ok {
				in = nil
				continue
			}
			m.handle(msg)
		case fn := <-m.eval:
			fn()
		case <-m.kick:
			now := m.d.Clock.Now()
			m.refreshMembers()
			m.tickRecords(now)
		case <-t.C():
			m.tick()
		}
		m.drainLocal()
	}
}

func (m *Market) drainLocal() {
	for len(m.local) > 0 {
		msg := m.local[0]
		m.local = m.local[1:]
		m.handle(msg)
	}
	m.local = nil
}

// MembershipChanged tells the market that members joined, left or died, so
// it re-reads the membership now instead of at its next refresh (lost hosts
// are re-placed sooner). It never blocks; the daemon calls it from its
// membership event handler.
func (m *Market) MembershipChanged() {
	select {
	case m.kick <- struct{}{}:
	default:
	}
}

// do runs fn on the state loop and waits for it.
func (m *Market) do(ctx context.Context, fn func()) error {
	done := make(chan struct{})
	wrapped := func() { fn(); close(done) }
	if m.ctx == nil {
		return fmt.Errorf("%w: not started", ErrClosed)
	}
	select {
	case m.eval <- wrapped:
	case <-ctx.Done():
		return ctx.Err()
	case <-m.ctx.Done():
		return ErrClosed
	}
	select {
	case <-done:
		return nil
	case <-m.ctx.Done():
		return ErrClosed
	}
}

// send signs nothing: it queues an encoded envelope to one peer (to self:
// handled by the loop directly).
func (m *Market) send(to peer.ID, s Signed) {
	data := s.Encode()
	m.sent.Add(1)
	if to == m.self {
		m.local = append(m.local, Inbound{From: m.self, Data: data})
		return
	}
	m.enqueue(to, data)
}

func (m *Market) broadcast(s Signed) {
	data := s.Encode()
	m.sent.Add(1)
	m.local = append(m.local, Inbound{From: m.self, Data: data})
	select {
	case m.out <- data:
	default:
		m.dropped.Add(1)
	}
}

// handle processes one inbound message on the state loop.
func (m *Market) handle(in Inbound) {
	m.received.Add(1)
	if in.From != m.self && m.penalty[in.From] >= m.cfg.MaxPenalty {
		m.dropped.Add(1)
		return
	}
	env, err := DecodeSigned(in.Data)
	if err == nil {
		now := m.d.Clock.Now()
		switch env.Kind {
		case KindAnnounce:
			err = m.onAnnounce(&env, now)
		case KindBid:
			err = m.onBid(&env, now)
		case KindDecline:
			err = m.onDecline(&env, now)
		case KindAward:
			err = m.onAward(&env, now)
		case KindAccept:
			err = m.onAccept(&env, now)
		case KindContract:
			err = m.onContract(&env, now)
		case KindStatus:
			err = m.onStatus(&env, now)
		case KindRequest:
			err = m.onRequestUpdate(&env, now)
		case KindWithdraw:
			err = m.onWithdraw(&env, now)
		case KindQuery:
			err = m.onOutcomeQuery(&env, now)
		default:
			err = fmt.Errorf("%w: kind %s not accepted here", ErrMalformed, env.Kind)
		}
	}
	if err != nil {
		m.dropped.Add(1)
		if !errors.Is(err, errIgnored) {
			m.penalize(in.From, err)
		}
	}
}

// errIgnored marks messages dropped without blame (late, duplicate gossip).
var errIgnored = errors.New("scheduler: ignored")

func (m *Market) penalize(from peer.ID, err error) {
	if from == m.self || from == "" {
		return
	}
	m.penalty[from]++
	m.log.Debug("market: rejected message", "from", from, "err", err)
}

func (m *Market) tick() {
	now := m.d.Clock.Now()
	if now.Sub(m.lastDecay) >= m.cfg.PenaltyDecay {
		m.lastDecay = now
		for id, p := range m.penalty {
			if p /= 2; p == 0 {
				delete(m.penalty, id)
			} else {
				m.penalty[id] = p
			}
		}
	}
	if now.Sub(m.lastMembers) >= m.cfg.MemberRefresh {
		m.refreshMembers()
	}
	m.tickAuctions(now)
	m.tickRecords(now)
	m.tickHosted(now)
	m.tickBidding(now)
}

func (m *Market) refreshMembers() {
	m.lastMembers = m.d.Clock.Now()
	members := m.d.Membership.Members()
	live := make(map[peer.ID]Advert, len(members))
	all := make(map[peer.ID]bool, len(members))
	unreach := map[peer.ID]time.Time{}
	for _, mem := range members {
		all[mem.ID] = true
		if !mem.Unreachable {
			live[mem.ID] = mem.Advert
		} else if !mem.UnreachableSince.IsZero() {
			unreach[mem.ID] = mem.UnreachableSince
		}
	}
	m.unreachSince = unreach
	live[m.self] = m.selfAdvert(live[m.self])
	all[m.self] = true
	for id, ad := range live {
		if old, ok := m.live[id]; (!ok || ad.FreePartitions > old.FreePartitions) && !ad.NoBids && ad.FreePartitions > 0 {
			m.capacityAt = m.lastMembers
		}
	}
	m.live, m.members = live, all
}

func (m *Market) selfAdvert(ad Advert) Advert {
	total, free, parts := m.d.Runner.Capacity()
	ad.Capacity, ad.Free, ad.FreePartitions = total, m.freeResources(total, free), parts-m.pendingPartitions()
	if ad.Labels == nil {
		ad.Labels = m.cfg.Policy.Labels
	}
	ad.NoBids = m.noBids
	return ad
}

// alive reports whether id is a live member this node reaches: a
// candidate, a host that is not lost.
func (m *Market) alive(id peer.ID) bool {
	_, ok := m.live[id]
	return ok
}

// member reports whether id is alive in the membership, reachable from
// here or not: what every node of the grid agrees on sooner or later,
// hence what decides whether a requester is gone (and which guardian
// acts for it). Reachability from one node is not: in a split bridged by
// a third party, guardians on the far side would re-place instances their
// requester still tracks.
func (m *Market) member(id peer.ID) bool { return m.members[id] }

func (m *Market) newAuctionID() []byte {
	b := make([]byte, AuctionIDLen)
	if _, err := io.ReadFull(m.d.Rand, b); err != nil {
		panic("scheduler: random source failed: " + err.Error())
	}
	return b
}

// notify wakes waiters and observers after a change of instance views.
func (m *Market) notify(ev Event) {
	close(m.changed)
	m.changed = make(chan struct{})
	for _, fn := range m.observers {
		fn(ev)
	}
}

// Observe registers fn to be called (on the state loop: it must not block
// nor call the Market) for every event. It returns a function that removes it.
func (m *Market) Observe(fn func(Event)) (cancel func()) {
	var id int
	if m.do(context.Background(), func() { m.nextObs++; id = m.nextObs; m.observers[id] = fn }) != nil {
		return func() {}
	}
	return func() { _ = m.do(context.Background(), func() { delete(m.observers, id) }) }
}

// remember caches a contract this node built from parts it verified.
func (m *Market) remember(c *Contract) {
	if len(m.verified) >= 4096 {
		clear(m.verified)
	}
	m.verified[sha256.Sum256(c.Encode())] = c.info
}

// openContract is OpenContract with a cache of contracts already verified
// (statuses repeat the same contract every StatusInterval).
func (m *Market) openContract(c *Contract) error {
	if c.info != nil {
		return nil
	}
	key := sha256.Sum256(c.Encode())
	if info := m.verified[key]; info != nil {
		c.info = info
		return nil
	}
	if err := OpenContract(c); err != nil {
		return err
	}
	if len(m.verified) >= 4096 {
		clear(m.verified)
	}
	m.verified[key] = c.info
	return nil
}
