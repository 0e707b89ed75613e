package p2p

import (
	"fmt"
	"net"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	ma "github.com/multiformats/go-multiaddr"
)

// MemberState is a member's state as seen by the local node.
type MemberState int

const (
	// StateAlive means the member answers probes.
	StateAlive MemberState = iota
	// StateSuspect means a probe failed and the member has not refuted it yet.
	StateSuspect
	// StateDead means the member was declared failed or left.
	StateDead
)

// String returns "alive", "suspect" or "dead".
func (s MemberState) String() string {
	switch s {
	case StateAlive:
		return "alive"
	case StateSuspect:
		return "suspect"
	case StateDead:
		return "dead"
	}
	return fmt.Sprintf("state(%d)", int(s))
}

// Member is one grid member as seen by the local node.
type Member struct {
	// ID is the member's peer ID (its memberlist node name).
	ID peer.ID
	// State is alive, suspect or dead.
	State MemberState
	// Addrs are the member's libp2p addresses from its signed advert.
	Addrs []ma.Multiaddr
	// Advert is the member's capacity advert (zero if its advert failed to verify).
	Advert Advert
	// AdvertOK reports whether the advert carried a valid signature.
	AdvertOK bool
	// Left is true when a dead member left gracefully rather than failed.
	Left bool
	// Unreachable is set on an alive or suspect member this node has
	// failed to reach by stream for several probes in a row (see
	// ReachTimings), although memberlist keeps it alive because others
	// reach it. The market leaves such a member out.
	Unreachable bool
	// UnreachableSince, set with Unreachable, is when the first of the
	// failed probes was sent: the member has not been reached since.
	UnreachableSince time.Time
	// leaving is set from the member's last advert.
	leaving bool
	// seq is the sequence number of the member's advert (valid if AdvertOK).
	seq uint64
	// Since is when the local node last saw the state change.
	Since time.Time
}

// MemberEventType says what happened to a member.
type MemberEventType int

const (
	// EventJoin: a member appeared (or came back after being dead).
	EventJoin MemberEventType = iota
	// EventAlive: a suspect member refuted the suspicion.
	EventAlive
	// EventSuspect: a member failed a probe and is suspected.
	EventSuspect
	// EventDead: a member was declared failed.
	EventDead
	// EventLeave: a member left gracefully.
	EventLeave
	// EventUpdate: a member's advert or addresses changed.
	EventUpdate
)

// String returns the event name.
func (t MemberEventType) String() string {
	switch t {
	case EventJoin:
		return "join"
	case EventAlive:
		return "alive"
	case EventSuspect:
		return "suspect"
	case EventDead:
		return "dead"
	case EventLeave:
		return "leave"
	case EventUpdate:
		return "update"
	}
	return fmt.Sprintf("event(%d)", int(t))
}

// MemberEvent is a change of one member.
type MemberEvent struct {
	// Type is what happened.
	Type MemberEventType
	// Member is the member after the change.
	Member Member
	// At is when the local node observed it.
	At time.Time
}

// memberTable tracks members and fans events out to subscribers. memberlist
// calls its delegate methods from its own goroutines.
type memberTable struct {
	n *Node

	mu      sync.Mutex
	members map[peer.ID]*Member
	subs    map[int]chan MemberEvent
	nextSub int
	closed  bool
}

const maxDeadKept = 4096

func newMemberTable(n *Node) *memberTable {
	return &memberTable{n: n, members: map[peer.ID]*Member{}, subs: map[int]chan MemberEvent{}}
}

func (t *memberTable) emitLocked(ev MemberEvent) {
	t.n.met.events.WithLabelValues(ev.Type.String()).Inc()
	for _, ch := range t.subs {
		select {
		case ch <- ev:
		default:
			t.n.log.Warn("member event dropped: subscriber too slow", "event", ev.Type.String(), "member", ev.Member.ID.String())
		}
	}
}

func (t *memberTable) updateGaugesLocked() {
	var alive, suspect, dead int
	for _, m := range t.members {
		switch m.State {
		case StateAlive:
			alive++
		case StateSuspect:
			suspect++
		default:
			dead++
		}
	}
	t.n.met.members.WithLabelValues("alive").Set(float64(alive))
	t.n.met.members.WithLabelValues("suspect").Set(float64(suspect))
	t.n.met.members.WithLabelValues("dead").Set(float64(dead))
}

// fromNode builds a Member from a memberlist node, verifying its advert.
func (t *memberTable) fromNode(node *memberlist.Node, st MemberState) (Member, bool) {
	id, err := peer.Decode(node.Name)
	if err != nil {
		t.n.log.Warn("member with a name that is not a peer ID", "name", node.Name)
		return Member{}, false
	}
	m := Member{ID: id, State: st, Since: time.Now()}
	if meta, err := DecodeMeta(id, node.Meta); err == nil {
		m.Advert, m.Addrs, m.AdvertOK, m.leaving, m.seq = meta.Advert, meta.Addrs, true, meta.Leaving, meta.Seq
	} else if len(node.Meta) > 0 {
		t.n.log.Warn("member advert rejected", "member", id.String(), "err", err)
	}
	return m, true
}

func (t *memberTable) upsert(node *memberlist.Node, typ MemberEventType) {
	st := StateAlive
	if typ == EventDead || typ == EventLeave {
		st = StateDead
	}
	m, ok := t.fromNode(node, st)
	if !ok {
		return
	}
	t.mu.Lock()
	if old, ok := t.members[m.ID]; ok {
		// memberlist does not authenticate who gossips a member's state:
		// any member can send an alive message for another with a replayed
		// (older, validly signed) or unverifiable advert. Adverts only move
		// forward: higher Seq wins.
		if old.AdvertOK && (!m.AdvertOK || m.seq < old.seq) {
			if typ == EventJoin || typ == EventUpdate {
				t.mu.Unlock()
				t.n.log.Warn("stale or unverifiable advert ignored", "member", m.ID.String(), "seq", m.seq, "known", old.seq)
				return
			}
			m.Advert, m.Addrs, m.AdvertOK, m.leaving, m.seq = old.Advert, old.Addrs, old.AdvertOK, old.leaving, old.seq
		}
		if typ == EventDead && old.leaving {
			typ = EventLeave // memberlist's leave notice does not say which it was
		}
	}
	t.mu.Unlock()
	m.Left = typ == EventLeave
	if st == StateAlive && m.ID != t.n.id && len(m.Addrs) > 0 {
		t.n.host.Peerstore().AddAddrs(m.ID, m.Addrs, peerstore.RecentlyConnectedAddrTTL)
	}
	if m.ID != t.n.id {
		if st == StateAlive {
			t.n.host.ConnManager().TagPeer(m.ID, "weft-member", 20)
		} else {
			t.n.host.ConnManager().UntagPeer(m.ID, "weft-member")
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return
	}
	if old, ok := t.members[m.ID]; ok && typ == EventUpdate {
		m.State = old.State
		if old.State == StateDead {
			typ = EventJoin
			m.State = StateAlive
		}
	}
	t.members[m.ID] = &m
	if st == StateDead {
		t.pruneDeadLocked()
	}
	t.updateGaugesLocked()
	t.emitLocked(MemberEvent{Type: typ, Member: m, At: m.Since})
}

func (t *memberTable) pruneDeadLocked() {
	var dead []*Member
	for _, m := range t.members {
		if m.State == StateDead {
			dead = append(dead, m)
		}
	}
	if len(dead) <= maxDeadKept {
		return
	}
	slices.SortFunc(dead, func(a, b *Member) int { return a.Since.Compare(b.Since) })
	for _, m := range dead[:len(dead)-maxDeadKept] {
		delete(t.members, m.ID)
	}
}

// syncSuspects compares memberlist's view (which knows suspects) with the
// table and emits suspect/alive transitions, which memberlist has no event for.
func (t *memberTable) syncSuspects(nodes []*memberlist.Node) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return
	}
	changed := false
	for _, node := range nodes {
		id, err := peer.Decode(node.Name)
		if err != nil {
			continue
		}
		m, ok := t.members[id]
		if !ok || m.State == StateDead {
			continue
		}
		switch {
		case node.State == memberlist.StateSuspect && m.State == StateAlive:
			c := *m
			c.State, c.Since = StateSuspect, time.Now()
			t.members[id] = &c
			t.emitLocked(MemberEvent{Type: EventSuspect, Member: c, At: c.Since})
			changed = true
		case node.State == memberlist.StateAlive && m.State == StateSuspect:
			c := *m
			c.State, c.Since = StateAlive, time.Now()
			t.members[id] = &c
			t.emitLocked(MemberEvent{Type: EventAlive, Member: c, At: c.Since})
			changed = true
		}
	}
	if changed {
		t.updateGaugesLocked()
	}
}

func (t *memberTable) list() []Member {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]Member, 0, len(t.members))
	for _, m := range t.members {
		out = append(out, *m)
	}
	slices.SortFunc(out, func(a, b Member) int {
		if a.ID < b.ID {
			return -1
		} else if a.ID > b.ID {
			return 1
		}
		return 0
	})
	return out
}

func (t *memberTable) subscribe() (<-chan MemberEvent, func()) {
	t.mu.Lock()
	defer t.mu.Unlock()
	ch := make(chan MemberEvent, 4096)
	if t.closed {
		close(ch)
		return ch, func() {}
	}
	k := t.nextSub
	t.nextSub++
	t.subs[k] = ch
	var once sync.Once
	return ch, func() {
		once.Do(func() {
			t.mu.Lock()
			defer t.mu.Unlock()
			if c, ok := t.subs[k]; ok {
				delete(t.subs, k)
				close(c)
			}
		})
	}
}

func (t *memberTable) close() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.closed = true
	for k, ch := range t.subs {
		delete(t.subs, k)
		close(ch)
	}
}

// eventDelegate adapts memberlist's events to the table.
type eventDelegate struct{ t *memberTable }

func (e eventDelegate) NotifyJoin(node *memberlist.Node)   { e.t.upsert(node, EventJoin) }
func (e eventDelegate) NotifyUpdate(node *memberlist.Node) { e.t.upsert(node, EventUpdate) }
func (e eventDelegate) NotifyLeave(node *memberlist.Node) {
	if node.State == memberlist.StateLeft {
		e.t.upsert(node, EventLeave)
	} else {
		e.t.upsert(node, EventDead)
	}
}

// metaDelegate supplies the local node's signed advert as memberlist meta.
type metaDelegate struct{ n *Node }

func (d metaDelegate) NodeMeta(limit int) []byte {
	d.n.advertMu.Lock()
	defer d.n.advertMu.Unlock()
	if len(d.n.metaB) > limit {
		return nil
	}
	return d.n.metaB
}
func (d metaDelegate) NotifyMsg([]byte)                           {}
func (d metaDelegate) GetBroadcasts(overhead, limit int) [][]byte { return nil }
func (d metaDelegate) LocalState(join bool) []byte                { return nil }
func (d metaDelegate) MergeRemoteState(buf []byte, join bool)     {}

// Members returns every member the node knows, self included: alive and
// suspect members from memberlist, and dead ones it remembers. Sorted by ID.
func (n *Node) Members() []Member {
	if n.table == nil {
		return nil
	}
	ms := n.table.list()
	for i := range ms {
		if ms[i].State != StateDead {
			st, _ := n.reach.state(ms[i].ID)
			ms[i].Unreachable = st.Unreachable
			if st.Unreachable {
				ms[i].UnreachableSince = st.FailingSince
			}
		}
	}
	return ms
}

// AliveCount is the number of members memberlist considers alive, self included.
func (n *Node) AliveCount() int {
	if n.ml == nil {
		return 0
	}
	return n.ml.NumMembers()
}

// SubscribeMembers returns a channel of membership events and a cancel
// function. The channel is buffered (4096); a subscriber that falls that far
// behind loses events (logged). It is closed by cancel or Close.
func (n *Node) SubscribeMembers() (<-chan MemberEvent, func()) { return n.table.subscribe() }

// Advert returns the local node's current advert.
func (n *Node) Advert() Advert {
	n.advertMu.Lock()
	defer n.advertMu.Unlock()
	return n.meta.Advert
}

// SetAdvert signs a and publishes it in the node's membership metadata.
// It fails with ErrTooLarge when the encoding exceeds MaxMetaSize (fewer or
// shorter labels, then).
func (n *Node) SetAdvert(a Advert) error {
	if err := n.setMeta(a, false); err != nil {
		return err
	}
	if n.ml == nil {
		return nil
	}
	return n.ml.UpdateNode(n.mlConf.TCPTimeout)
}

// setMeta re-signs the metadata with advert a and the host's addresses
// (at most 4, to stay under the metadata limit).
func (n *Node) setMeta(a Advert, leaving bool) error {
	// Circuit addresses first: a member behind NAT is reached through them.
	// (the keeper's are there at once: the host's own list catches up at
	// its next address update).
	all := n.host.Addrs()
	addrs := n.relay.circuitAddrs()
	for _, a := range all {
		if isCircuit(a) && !slices.ContainsFunc(addrs, a.Equal) {
			addrs = append(addrs, a)
		}
	}
	addrs = append(addrs, slices.DeleteFunc(all, isCircuit)...)
	if len(addrs) > 4 {
		addrs = addrs[:4]
	}
	n.advertMu.Lock()
	defer n.advertMu.Unlock()
	seq := uint64(time.Now().UnixMilli())
	if seq <= n.meta.Seq {
		seq = n.meta.Seq + 1
	}
	m := Meta{Seq: seq, Advert: a, Addrs: addrs, Leaving: leaving}
	b, err := EncodeMeta(n.priv, m)
	if err != nil {
		return err
	}
	n.meta, n.metaB = m, b
	return nil
}

func (n *Node) startMembership() error {
	if err := n.setMeta(n.cfg.Advert, false); err != nil {
		return err
	}
	n.table = newMemberTable(n)
	n.tableFor.Store(n.table)
	c := n.cfg.Preset.MemberlistConfig()
	c.Name = n.id.String()
	c.Events = eventDelegate{n.table}
	c.Delegate = metaDelegate{n}
	c.Logger = newMemberlistLogger(n.log)
	c.Label = string(n.prefix)
	switch n.cfg.Transport {
	case TransportNet:
		host, port, err := net.SplitHostPort(n.cfg.MemberlistBind)
		if err != nil {
			return fmt.Errorf("%w: memberlist bind: %w", ErrConfig, err)
		}
		c.BindAddr = host
		c.BindPort, _ = strconv.Atoi(port)
		c.AdvertisePort = 0
	default:
		// Streams are not limited by the path MTU: gossip can carry far
		// more updates per message than memberlist's UDP default (1400).
		c.UDPBufferSize = StreamPacketSize
	}
	if n.cfg.Tune != nil {
		n.cfg.Tune(c)
	}
	if n.cfg.Transport != TransportNet {
		n.tr = NewStreamTransport(n.host, n.prefix, c.TCPTimeout, n.log)
		c.Transport = n.tr
	}
	n.mlConf = c
	ml, err := memberlist.Create(c)
	if err != nil {
		return fmt.Errorf("p2p: memberlist: %w", err)
	}
	n.ml = ml
	n.wg.Add(1)
	go n.watchSuspects()
	return nil
}

func (n *Node) watchSuspects() {
	defer n.wg.Done()
	tk := time.NewTicker(n.mlConf.ProbeInterval / 2)
	defer tk.Stop()
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-tk.C:
			n.table.syncSuspects(n.ml.Members())
		}
	}
}

// MemberlistAddr is the host:port of memberlist's own transport when
// Transport is TransportNet ("" otherwise).
func (n *Node) MemberlistAddr() string {
	if n.cfg.Transport != TransportNet || n.ml == nil {
		return ""
	}
	ln := n.ml.LocalNode()
	return net.JoinHostPort(ln.Addr.String(), strconv.Itoa(int(ln.Port)))
}

// joinPeers asks memberlist to join the given peers (by peer ID, over the
// libp2p transport). It returns how many answered.
func (n *Node) joinPeers(ids []peer.ID) (int, error) {
	if n.ml == nil || n.tr == nil || len(ids) == 0 {
		return 0, nil
	}
	var names []string
	for _, id := range ids {
		if id != n.id {
			names = append(names, id.String()+"/"+n.tr.placeholderAddr())
		}
	}
	if len(names) == 0 {
		return 0, nil
	}
	return n.ml.Join(names)
}

// Join connects to the given peers and joins their membership.
func (n *Node) Join(infos ...peer.AddrInfo) (int, error) {
	var ids []peer.ID
	for _, ai := range infos {
		if ai.ID == n.id {
			continue
		}
		n.host.Peerstore().AddAddrs(ai.ID, ai.Addrs, peerstore.TempAddrTTL)
		ids = append(ids, ai.ID)
	}
	if n.cfg.Transport == TransportNet {
		return n.ml.Join(n.cfg.MemberlistJoin)
	}
	return n.joinPeers(ids)
}
