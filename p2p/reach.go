package p2p

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
	"github.com/libp2p/go-libp2p/p2p/protocol/ping"
)

// Stream reachability. memberlist keeps a member alive as long as anyone
// reaches it: its indirect probes go through third parties, so a member
// this node cannot open a stream to (a split bridged by a third member, a
// peer behind NAT with no relay) stays "alive" here although nothing this
// node sends it arrives. The reach watch corrects that view: it pings every
// alive member over a stream of libp2p's ping protocol (one stream per
// member, reused while it works) and marks a member unreachable after
// ReachTimings.Fails probes in a row failed — a failed dial, a reset
// stream or no echo within the timeout — and reachable again after as many
// probes in a row succeeded, so one lost ping or one slow echo changes
// nothing. Successful pings also feed libp2p's RTT estimate.

// ReachTimings tune the reach watch.
type ReachTimings struct {
	// Interval is the pause between two probes of one member (stretched so
	// that a node sends at most reachBudget probes per second in all).
	Interval time.Duration
	// Timeout bounds one probe: dial, stream and echo.
	Timeout time.Duration
	// Fails is how many probes in a row must fail (or succeed) before the
	// member's reach changes.
	Fails int
}

// reachStreamAge is how long a ping stream is reused: libp2p's ping
// handler ends a stream after 30 s.
const reachStreamAge = 20 * time.Second

// reachLate: a failed probe that returned this much later than its
// timeout ran on a node starved of CPU; it is not counted.
const reachLate = 250 * time.Millisecond

// errInconclusive marks a probe that is not counted.
var errInconclusive = errors.New("p2p: probe inconclusive: this node was starved of CPU")

// reachDialTimeout bounds a probe that must dial first.
const reachDialTimeout = 3 * time.Second

// reachRetry is the pause between probes of an unreachable member.
const reachRetry = time.Second

// reachBudget bounds the probes a node sends per second over all members:
// in a large grid each member is probed less often.
const reachBudget = 40

// ReachTimings returns the preset's reach watch timings: LAN probes every
// 250 ms with a 750 ms timeout (a member unreachable from here is known in
// about 1–2 s); local (one machine, tests under load) every 250 ms with a
// 1 s timeout and 3 in a row; WAN every 2 s with a 3 s timeout, 3 in a row.
func (p Preset) ReachTimings() ReachTimings {
	switch p {
	case PresetWAN:
		return ReachTimings{Interval: 2 * time.Second, Timeout: 3 * time.Second, Fails: 3}
	case PresetLocal:
		return ReachTimings{Interval: 250 * time.Millisecond, Timeout: time.Second, Fails: 3}
	default:
		return ReachTimings{Interval: 250 * time.Millisecond, Timeout: 750 * time.Millisecond, Fails: 2}
	}
}

// ReachState is what the reach watch knows of one member.
type ReachState struct {
	// Unreachable is set once Fails probes in a row failed, cleared once as
	// many succeeded.
	Unreachable bool
	// Since is when Unreachable last changed (zero: never).
	Since time.Time
	// FailingSince is when the first probe of the current run of failed
	// probes was sent (zero after a success): the member has not been
	// reached since then.
	FailingSince time.Time
	// LastOK is when a probe last succeeded (zero: never).
	LastOK time.Time
	// Err is the last failed probe's error ("" after a success).
	Err string
}

type reachPeer struct {
	ReachState
	run    int // probes in a row with the same outcome, against the current state
	cancel context.CancelFunc
}

// reachWatch runs one prober goroutine per alive member.
type reachWatch struct {
	n   *Node
	tim ReachTimings

	mu    sync.Mutex
	peers map[peer.ID]*reachPeer
}

func newReachWatch(n *Node, tim ReachTimings) *reachWatch {
	return &reachWatch{n: n, tim: tim, peers: map[peer.ID]*reachPeer{}}
}

// run starts and stops probers as members come and go, until ctx ends.
func (w *reachWatch) run(ctx context.Context) {
	defer w.n.wg.Done()
	var pwg sync.WaitGroup
	defer pwg.Wait()
	tk := time.NewTicker(w.tim.Interval)
	defer tk.Stop()
	for {
		alive := map[peer.ID]bool{}
		for _, m := range w.n.table.list() {
			if m.ID != w.n.id && m.State != StateDead {
				alive[m.ID] = true
			}
		}
		w.mu.Lock()
		for id, p := range w.peers {
			if !alive[id] {
				p.cancel()
				delete(w.peers, id)
			}
		}
		for id := range alive {
			if _, ok := w.peers[id]; !ok {
				pctx, cancel := context.WithCancel(ctx)
				w.peers[id] = &reachPeer{cancel: cancel}
				pwg.Add(1)
				go func() {
					defer pwg.Done()
					w.probeLoop(pctx, id)
				}()
			}
		}
		w.mu.Unlock()
		select {
		case <-ctx.Done():
			w.mu.Lock()
			for id, p := range w.peers {
				p.cancel()
				delete(w.peers, id)
			}
			w.mu.Unlock()
			return
		case <-tk.C:
		}
	}
}

// fails is how many probes in a row change a member's reach now: Fails,
// plus memberlist's health score (Lifeguard's awareness, 0 while this node
// meets its probe deadlines; it rises when this node itself is slow), at
// most 4 more: a struggling node waits for more evidence before it calls
// others unreachable.
func (w *reachWatch) fails() int {
	n := w.tim.Fails
	if w.n.ml != nil {
		n += min(max(w.n.ml.GetHealthScore(), 0), 4)
	}
	return n
}

// interval is the pause between two probes of one member now.
func (w *reachWatch) interval() time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	return max(w.tim.Interval, time.Duration(len(w.peers))*time.Second/reachBudget)
}

// probeLoop probes id until ctx ends, reusing one ping stream while it works.
func (w *reachWatch) probeLoop(ctx context.Context, id peer.ID) {
	var s network.Stream
	var opened time.Time
	defer func() {
		if s != nil {
			_ = s.Reset()
		}
	}()
	buf := make([]byte, ping.PingSize)
	echo := make([]byte, ping.PingSize)
	for {
		start := time.Now()
		timeout := w.tim.Timeout
		err := func() error {
			if s == nil && len(w.n.host.Network().ConnsToPeer(id)) == 0 {
				// A dial first (through a relay it takes a few round
				// trips more, and libp2p tries relays last), and
				// whatever dial failed before must not make it fail
				// at once: libp2p's dial back-off would hide that
				// the member is back.
				timeout = max(timeout, reachDialTimeout)
				w.n.clearBackoff(id)
			}
			pctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			if s != nil && start.Sub(opened) > reachStreamAge {
				_ = s.Close() // before the ping handler's own 30 s limit
				s = nil
			}
			if s == nil {
				var err error
				s, err = w.n.host.NewStream(network.WithAllowLimitedConn(pctx, "reach"), id, ping.ID)
				if err != nil {
					return err
				}
				opened = start
			}
			if err := s.SetDeadline(start.Add(timeout)); err != nil {
				return err
			}
			if _, err := rand.Read(buf); err != nil {
				return err
			}
			if _, err := s.Write(buf); err != nil {
				return err
			}
			if _, err := io.ReadFull(s, echo); err != nil {
				return err
			}
			if string(echo) != string(buf) {
				return errors.New("p2p: ping echo differs")
			}
			return nil
		}()
		if ctx.Err() != nil {
			return
		}
		if err != nil && s != nil {
			_ = s.Reset()
			s = nil
		}
		if err == nil {
			w.n.host.Peerstore().RecordLatency(id, time.Since(start))
		}
		if err != nil && time.Since(start) > timeout+reachLate {
			// The probe's own deadline fired late: this node was
			// starved of CPU meanwhile, and the missing echo says
			// more about it than about the member. Not counted.
			err = errInconclusive
		}
		unreachable, since, turned := w.record(id, start, err)
		pause := w.interval()
		switch {
		case unreachable:
			// Probe slower. At the verdict, the direct connections
			// the failed probes went over (opened before the first
			// of them) are dead: one that went dead without a reset
			// (a cut cable) stays open until its keepalive fails,
			// and every new stream would go over it.
			pause = max(pause, reachRetry)
			if turned {
				w.n.closeConnsBefore(id, since)
			}
		case err != nil:
			pause = 0 // confirm at once, on a fresh stream
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(pause):
		}
	}
}

// record counts the outcome of one probe sent at start and returns whether
// id is now unreachable, since when it has been failing, and whether it
// just turned unreachable.
func (w *reachWatch) record(id peer.ID, start time.Time, err error) (unreachable bool, since time.Time, turned bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	p := w.peers[id]
	if p == nil {
		return false, time.Time{}, false
	}
	if err == errInconclusive {
		return p.Unreachable, p.FailingSince, false
	}
	now := time.Now()
	if err == nil {
		p.LastOK, p.Err, p.FailingSince = now, "", time.Time{}
	} else {
		p.Err = err.Error()
		if p.FailingSince.IsZero() {
			p.FailingSince = start
		}
	}
	if (err != nil) == p.Unreachable {
		p.run = 0 // as expected
		return p.Unreachable, p.FailingSince, false
	}
	p.run++
	if p.run < w.fails() {
		return p.Unreachable, p.FailingSince, false
	}
	p.run = 0
	p.Unreachable, p.Since = err != nil, now
	if p.Unreachable {
		w.n.log.Info("member unreachable by stream", "member", id.String(), "err", p.Err)
		w.n.met.events.WithLabelValues("unreachable").Inc()
	} else {
		w.n.log.Info("member reachable by stream again", "member", id.String())
		w.n.met.events.WithLabelValues("reachable").Inc()
	}
	return p.Unreachable, p.FailingSince, p.Unreachable
}

// state returns what the watch knows of id.
func (w *reachWatch) state(id peer.ID) (ReachState, bool) {
	if w == nil {
		return ReachState{}, false
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	p, ok := w.peers[id]
	if !ok {
		return ReachState{}, false
	}
	return p.ReachState, true
}

// closeConnsBefore closes the direct connections to p opened before t
// (relayed ones are kept: a new one takes longer to set up than a probe
// waits) and clears libp2p's dial back-off for p, so that the next stream
// dials afresh. For a member whose probes have failed since t, or that
// was declared dead at t: a connection opened before is dead or untested,
// one opened since is not touched.
func (n *Node) closeConnsBefore(p peer.ID, t time.Time) {
	for _, c := range n.host.Network().ConnsToPeer(p) {
		if !c.Stat().Limited && c.Stat().Opened.Before(t) {
			_ = c.Close()
		}
	}
	n.clearBackoff(p)
}

// clearBackoff forgets libp2p's dial back-off for p.
func (n *Node) clearBackoff(p peer.ID) {
	if sw, ok := n.host.Network().(interface{ Backoff() *swarm.DialBackoff }); ok {
		sw.Backoff().Clear(p)
	}
}

// ReachState returns what the node knows of its stream reach to member p:
// whether recent probes failed (see ReachTimings). ok is false for a member
// not probed (self, dead or unknown members, or the watch is off).
func (n *Node) ReachState(p peer.ID) (ReachState, bool) { return n.reach.state(p) }

// String describes the state for logs.
func (s ReachState) String() string {
	if s.Unreachable {
		return fmt.Sprintf("unreachable since %s: %s", s.Since.Format(time.RFC3339), s.Err)
	}
	return "reachable"
}
