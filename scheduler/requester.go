package scheduler

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// RequestSpec is what a caller asks for; the market fills in the
// requester, instance ID, generation, timestamp and delegation, and signs it.
type RequestSpec struct {
	Name         string
	RecipeCID    string
	SoftwareType string
	// Params must already be validated against the recipe's schema.
	Params      map[string]string
	Resources   Resources
	Constraints Constraints
	// State is started (default), stopped or destroyed.
	State State
	// Grace before a silent host counts as lost (0: the market's default).
	Grace time.Duration
	// Guardians is how many guardians may re-place the instance while this
	// node is offline (0: the market's default; -1: none).
	Guardians int
	// DelegationTTL bounds the delegation (0: no end).
	DelegationTTL   time.Duration
	WaitForCapacity bool
	Batch           bool
	MaxRetries      int
}

// record is what a tracker (the requester, or a guardian) knows of an instance.
type record struct {
	mine      bool
	req       *Request
	env       Signed
	contract  *Contract
	status    *Status
	auction   *auctionRun
	maxEpoch  uint64
	failed    string // last auction's explanation
	waitSince time.Time
	lostSince time.Time
	// heard is when the current host last reported (or the contract was
	// adopted): a host silent for SilentAfter counts as lost even while
	// the membership says it is alive (others reach it, this node not).
	heard   time.Time
	retries int
	updated time.Time
	// failedOn are hosts where a batch run failed (kept off retries).
	failedOn []peer.ID
	// guardLost is when a guardian was first seen missing.
	guardLost time.Time
	// lastHost and lastEpoch name the host of a destroyed instance (views).
	lastHost  peer.ID
	lastEpoch uint64
	// failedAt is when the last auction failed (re-placements of a lost
	// host are retried every WaitRetry, not at every tick).
	failedAt time.Time
	// failures counts the auctions failed in a row (retries back off).
	failures int
	// pending is this node's award waiting for its accept; withdrawn are
	// its awards that timed out (they never become contracts).
	pending   *awardRef
	withdrawn []awardRef
	// resumeOn is the host of a stopped instance asked to start again: the
	// restart's auction is open to it alone while it is alive (the
	// stopped copy and its disk are there); if that auction fails, the
	// next, opened at once, is open to every node.
	resumeOn peer.ID
	// history is what the host reported, slice by slice: each change of
	// its verdict (healthy or not, and why), stamped with this node's
	// clock, for SliceHealth.
	history []healthMark
}

// healthMark is one change of a host's verdict on an instance.
type healthMark struct {
	at       time.Time
	epoch    uint64
	provider peer.ID
	healthy  bool
	reason   string
}

// awardRef names an award this node made as auctioneer.
type awardRef struct {
	// Award is the digest of the award envelope.
	Award     []byte  `cbor:"1,keyasint"`
	AuctionID []byte  `cbor:"2,keyasint"`
	Provider  peer.ID `cbor:"3,keyasint"`
	Epoch     uint64  `cbor:"4,keyasint"`
}

// maxWithdrawn bounds the withdrawn awards a record keeps.
const maxWithdrawn = 16

// withdrawnAward returns the withdrawn award with this digest, if any.
func (rec *record) withdrawnAward(digest []byte) *awardRef {
	for i := range rec.withdrawn {
		if bytes.Equal(rec.withdrawn[i].Award, digest) {
			return &rec.withdrawn[i]
		}
	}
	return nil
}

// auctionRun is an auction this node runs, with what it sent.
type auctionRun struct {
	a       *Auction
	rec     *record
	ann     Signed
	award   Signed
	info    *AwardInfo
	reason  string
	request string
}

func (m *Market) buildRequest(spec RequestSpec, prev *record, now time.Time) (*Request, error) {
	if err := ValidateName(spec.Name); err != nil {
		return nil, err
	}
	if spec.State == StatePending {
		spec.State = StateStarted
	}
	if !spec.State.requestable() {
		return nil, fmt.Errorf("%w: state %s cannot be requested", ErrInvalidRequest, spec.State)
	}
	if !spec.Resources.valid() || spec.Grace < 0 || spec.MaxRetries < 0 || spec.MaxRetries > 100 {
		return nil, fmt.Errorf("%w: resources, grace or retries out of range", ErrInvalidRequest)
	}
	grace := spec.Grace
	if grace == 0 {
		grace = m.cfg.Grace
	}
	k := spec.Guardians
	if k == 0 {
		k = m.cfg.Guardians
	}
	var guardians []peer.ID
	if k > 0 {
		guardians = Guardians(NewInstanceID(m.self, spec.Name), slices.Collect(maps.Keys(m.live)), []peer.ID{m.self}, min(k, MaxGuardians))
	}
	gen := uint64(now.UnixNano())
	if prev != nil && gen <= prev.req.Generation {
		gen = prev.req.Generation + 1
	}
	r := &Request{
		Requester: m.self, Name: spec.Name, Instance: NewInstanceID(m.self, spec.Name),
		Generation: gen, Timestamp: now.UnixNano(),
		RecipeCID: spec.RecipeCID, SoftwareType: spec.SoftwareType, Params: spec.Params,
		Resources: spec.Resources, Constraints: spec.Constraints, State: spec.State, Grace: grace,
		Delegation:      Delegation{Guardians: guardians},
		WaitForCapacity: spec.WaitForCapacity, Batch: spec.Batch, MaxRetries: spec.MaxRetries,
	}
	if spec.DelegationTTL > 0 {
		r.Delegation.Expires = now.Add(spec.DelegationTTL).UnixNano()
	}
	if err := r.validate(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidRequest, err)
	}
	if len(marshal(r)) > MaxMessageBytes/4 {
		return nil, fmt.Errorf("%w: request over %d bytes", ErrTooLarge, MaxMessageBytes/4)
	}
	return r, nil
}

// Request publishes (or updates) an instance request and returns its view
// at once; use Wait to wait for a state. Requesting an existing name again
// with other parameters updates the instance in place; with another state
// changes its state.
func (m *Market) Request(ctx context.Context, spec RequestSpec) (InstanceView, error) {
	var view InstanceView
	var err error
	derr := m.do(ctx, func() {
		now := m.d.Clock.Now()
		id := NewInstanceID(m.self, spec.Name)
		rec := m.records[id]
		m.refreshMembers()
		var req *Request
		req, err = m.buildRequest(spec, rec, now)
		if err != nil {
			return
		}
		env := m.signer.Sign(KindRequest, req)
		var oldGuardians []peer.ID
		// revive: an instance destroyed (or being destroyed) is asked
		// for again. Its host may have forgotten its copy already and
		// ignores updates then: place it afresh (a new epoch, which
		// also fences a copy still there).
		revive := false
		// restart: a stopped instance asked to start again. Its contract's
		// billing ended with the stop, so it runs under a new epoch,
		// awarded to the host of its stopped copy when it can take it.
		restart := false
		if rec != nil {
			oldGuardians = rec.req.Delegation.Guardians
			revive = rec.req.State == StateDestroyed && req.State != StateDestroyed
			restart = rec.req.State == StateStopped && req.State == StateStarted && rec.contract != nil
		}
		if rec == nil {
			rec = &record{mine: true}
			m.records[id] = rec
		}
		rec.mine = true
		rec.req, rec.env, rec.updated = req, env, now
		rec.retries = 0
		if revive {
			rec.contract, rec.status = nil, nil
		}
		rec.resumeOn = ""
		if restart {
			rec.resumeOn = rec.contract.Provider()
			rec.contract, rec.status = nil, nil
		}
		switch {
		case rec.contract != nil && m.member(rec.contract.Provider()):
			// Update in place: the host applies the new generation.
			m.send(rec.contract.Provider(), env)
			m.sendToGuardians(rec, env, oldGuardians)
		case req.State == StateDestroyed:
			if rec.contract != nil {
				// Its host is not alive: the view keeps naming the
				// contract it ran under (the requester's end of its
				// billing, settle.StopEnds, needs its epoch).
				rec.lastHost, rec.lastEpoch = rec.contract.Provider(), rec.contract.Epoch()
			}
			rec.contract, rec.status = nil, nil
			// The guardians (old and new) must learn it, or one would
			// place the instance again when the requester is offline too.
			m.sendToGuardians(rec, env, oldGuardians)
		case rec.auction == nil:
			m.startAuction(rec, now, "request")
		}
		m.saveRecord(rec)
		view = m.view(rec)
		m.notify(Event{Kind: EventRequested, Instance: view})
	})
	if derr != nil {
		return InstanceView{}, derr
	}
	return view, err
}

// sendToGuardians sends env to rec's guardians and to the former ones
// (a new generation may name others), once each, skipping this node and
// the host (sent to already).
func (m *Market) sendToGuardians(rec *record, env Signed, former []peer.ID) {
	sent := map[peer.ID]bool{m.self: true}
	if rec.contract != nil {
		sent[rec.contract.Provider()] = true
	}
	for _, g := range append(slices.Clone(rec.req.Delegation.Guardians), former...) {
		if !sent[g] {
			sent[g] = true
			m.send(g, env)
		}
	}
}

// startAuction announces rec's request and opens an auction for the epoch
// after the last one awarded (an auction that awards nothing burns no
// epoch; each award moves it on).
func (m *Market) startAuction(rec *record, now time.Time, reason string) {
	req := rec.req
	epoch := rec.maxEpoch + 1
	if rec.contract != nil && rec.contract.Epoch() >= epoch {
		epoch = rec.contract.Epoch() + 1
	}
	if b := m.best[req.Instance]; b != nil && b.Epoch() >= epoch {
		epoch = b.Epoch() + 1
	}
	c := req.Constraints
	f := Filter{Labels: copyLabels(c.Labels), MaxPrice: c.MaxPrice, MaxRTT: c.MaxRTT}
	if c.Node != "" {
		f.Node, f.NodeWhy = c.Node, "node="+c.Node.String()
	}
	if c.CoLocate != "" {
		other := m.records[NewInstanceID(req.Requester, c.CoLocate)]
		if other == nil || other.contract == nil {
			m.failAuction(rec, now, "no node placed "+req.Name+": colocate target "+c.CoLocate+" is not placed")
			return
		}
		if f.Node != "" && f.Node != other.contract.Provider() {
			m.failAuction(rec, now, "no node placed "+req.Name+": node and colocate name different nodes")
			return
		}
		f.Node, f.NodeWhy = other.contract.Provider(), "colocate="+c.CoLocate
	}
	if f.Node == "" && rec.resumeOn != "" && m.alive(rec.resumeOn) {
		f.Node, f.NodeWhy = rec.resumeOn, "restart on the node holding its stopped copy"
	}
	if c.AntiAffinity != "" {
		f.ExcludeWhy = "anti_affinity=" + c.AntiAffinity
		f.ExcludeLabel = c.AntiAffinityScope
		for _, o := range m.records {
			if o == rec || o.req.Requester != req.Requester || o.req.Constraints.AntiAffinity != c.AntiAffinity ||
				o.contract == nil || o.req.State == StateDestroyed {
				continue
			}
			host := o.contract.Provider()
			if f.ExcludeLabel == "" {
				f.ExcludeNodes = append(f.ExcludeNodes, host)
			} else if v, ok := m.live[host].Labels[f.ExcludeLabel]; ok && !slices.Contains(f.ExcludeValues, v) {
				f.ExcludeValues = append(f.ExcludeValues, v)
			}
		}
	}
	if len(rec.failedOn) > 0 {
		f.ExcludeNodes = append(f.ExcludeNodes, rec.failedOn...)
		if f.ExcludeWhy == "" {
			f.ExcludeWhy = "an earlier failure"
		}
	}
	ann := &Announcement{
		AuctionID: m.newAuctionID(), Instance: req.Instance, Requester: req.Requester, Name: req.Name,
		Generation: req.Generation, Epoch: epoch, Resources: req.Resources, Filter: f,
		RecipeCID: req.RecipeCID, SoftwareType: req.SoftwareType,
		Issued: now.UnixNano(), Expires: now.Add(m.cfg.Auction.Window + m.cfg.Auction.AwardTimeout).UnixNano(),
		Slice: int64(m.cfg.Policy.Slice),
	}
	if ann.Expires-ann.Issued > int64(MaxWindow) {
		ann.Expires = ann.Issued + int64(MaxWindow)
	}
	env := m.signer.Sign(KindAnnounce, ann)
	m.refreshMembers()
	// Members that do not bid (requester-only, draining) are no bidders:
	// the auction neither waits for them nor lists them.
	var members []peer.ID
	for _, id := range slices.Sorted(maps.Keys(m.live)) {
		if !m.live[id].NoBids {
			members = append(members, id)
		}
	}
	var expected []peer.ID
	var pre []DeclineEntry
	if m.cfg.BidderSet > 0 {
		var cand []peer.ID
		for _, id := range members {
			if code, text := Prefilter(ann, id, m.live[id]); code != DeclineNone {
				pre = append(pre, DeclineEntry{id, code, text})
			} else {
				cand = append(cand, id)
			}
		}
		expected = BidderSet(req.Instance, cand, m.cfg.BidderSet)
	} else {
		expected = members
	}
	run := &auctionRun{a: NewAuction(m.cfg.Auction, ann, expected, pre, now), rec: rec, ann: env, reason: reason, request: req.Name}
	m.auctions[string(ann.AuctionID)] = run
	rec.auction = run
	m.seen[string(ann.AuctionID)] = time.Unix(0, ann.Expires)
	if m.cfg.BidderSet > 0 {
		for _, id := range expected {
			m.send(id, env)
		}
	} else {
		m.broadcast(env)
	}
	m.log.Debug("market: auction opened", "instance", req.Instance.Short(), "epoch", epoch, "reason", reason, "bidders", len(expected))
	m.apply(run, run.a.Tick(now), now)
}

func (m *Market) failAuction(rec *record, now time.Time, why string) {
	if rec.resumeOn != "" && rec.mine {
		// The stopped copy's host did not take the restart: the next
		// auction, at once, is open to every node.
		rec.resumeOn = ""
		rec.auction = nil
		m.startAuction(rec, now, "restart: the node holding its stopped copy did not take it ("+truncate(why, 200)+")")
		return
	}
	rec.failed = why
	rec.failedAt = now
	rec.failures++
	run := rec.auction
	rec.auction = nil
	if rec.req.WaitForCapacity && rec.waitSince.IsZero() {
		rec.waitSince = now
	}
	rec.updated = now
	ev := Event{Kind: EventUnplaced, Instance: m.view(rec), Reason: why}
	if run != nil {
		av := auctionView(run)
		ev.Auction = &av
	}
	m.notify(ev)
}

// retryDelay is how long after a failed auction the next one may open:
// WaitRetry, doubled for each further failure in a row, up to 4×.
func (m *Market) retryDelay(rec *record) time.Duration {
	return m.cfg.WaitRetry << min(max(rec.failures-1, 0), 2)
}

// minRetry is the least time between two auctions of one instance that
// failed: capacity that appeared meanwhile cuts the back-off down to it.
const minRetry = 250 * time.Millisecond

// retryDue reports whether rec's failed auction may be tried again at
// now: its back-off has passed, or capacity appeared since it failed (a
// member joined or rejoined, or advertised more free partitions) and
// minRetry has passed.
func (m *Market) retryDue(rec *record, now time.Time) bool {
	d := now.Sub(rec.failedAt)
	if d < 0 {
		return false
	}
	return d >= m.retryDelay(rec) || d >= minRetry && m.capacityAt.After(rec.failedAt)
}

// apply carries out an auction's actions.
func (m *Market) apply(run *auctionRun, acts []Action, now time.Time) {
	for _, act := range acts {
		switch {
		case act.Expired != nil:
			m.withdrawPending(run.rec, now)
		case act.Award != nil:
			// The slice the winning bid repeated (0 from an older bidder,
			// which could not read an award stating one).
			aw := &Award{AuctionID: run.a.ID, Request: run.rec.env, Bid: act.Award.Env, Epoch: act.Epoch, Issued: now.UnixNano(),
				AcceptBy: now.Add(m.cfg.Auction.AwardTimeout).UnixNano(), Slice: act.Award.Bid.Slice}
			run.award = m.signer.Sign(KindAward, aw)
			run.info = &AwardInfo{Award: aw, Auctioneer: m.self, Request: run.rec.req, Bid: act.Award.Bid, Provider: act.Award.Bidder}
			rec := run.rec
			rec.maxEpoch = max(rec.maxEpoch, act.Epoch)
			rec.pending = &awardRef{Award: run.award.Digest(), AuctionID: run.a.ID, Provider: act.Award.Bidder, Epoch: act.Epoch}
			m.saveRecord(rec)
			m.send(act.Award.Bidder, run.award)
		case act.Failed:
			m.finishAuction(run)
			if run.rec.auction == run {
				m.failAuction(run.rec, now, act.Explanation)
			}
		}
	}
}

// withdrawPending gives up rec's pending award: it is kept as withdrawn
// (anything that shows it accepted is answered with a withdrawal) and its
// provider is told at once, so that a copy it started stops.
func (m *Market) withdrawPending(rec *record, now time.Time) {
	p := rec.pending
	if p == nil {
		return
	}
	rec.pending = nil
	if len(rec.withdrawn) >= maxWithdrawn {
		rec.withdrawn = slices.Delete(rec.withdrawn, 0, len(rec.withdrawn)-maxWithdrawn+1)
	}
	rec.withdrawn = append(rec.withdrawn, *p)
	m.saveRecord(rec)
	m.sendWithdraw(*p, now)
	m.log.Debug("market: award withdrawn", "instance", rec.req.Instance.Short(), "epoch", p.Epoch, "provider", p.Provider)
}

func (m *Market) sendWithdraw(p awardRef, now time.Time) {
	m.send(p.Provider, m.signer.Sign(KindWithdraw, &Withdraw{AuctionID: p.AuctionID, Award: p.Award, Epoch: p.Epoch, Issued: now.UnixNano()}))
}

func (m *Market) finishAuction(run *auctionRun) {
	delete(m.auctions, string(run.a.ID))
	if m.cfg.History > 0 {
		if len(m.history) >= m.cfg.History {
			m.history = slices.Delete(m.history, 0, len(m.history)-m.cfg.History+1)
		}
		m.history = append(m.history, run)
	}
}

func (m *Market) tickAuctions(now time.Time) {
	for _, run := range m.auctions {
		m.apply(run, run.a.Tick(now), now)
	}
}

func (m *Market) onBid(env *Signed, now time.Time) error {
	var peek Bid
	if err := unmarshal(env.Body, &peek); err != nil {
		return err
	}
	run := m.auctions[string(peek.AuctionID)]
	if run == nil {
		return errIgnored // late, or not ours
	}
	bid, err := OpenBid(env, run.a.Ann.Resources)
	if err != nil {
		return err
	}
	rtt := bid.RTT
	if run.a.Ann.Requester == m.self {
		if own, ok := m.d.Membership.RTT(env.Signer); ok && own > rtt {
			rtt = own
		}
	}
	acts, err := run.a.AddBid(now, &BidEntry{Bidder: env.Signer, Bid: bid, Env: *env, RTT: rtt})
	m.apply(run, acts, now)
	return err
}

func (m *Market) onDecline(env *Signed, now time.Time) error {
	d, err := OpenDecline(env)
	if err != nil {
		return err
	}
	run := m.auctions[string(d.AuctionID)]
	if run == nil {
		return errIgnored
	}
	m.apply(run, run.a.AddDecline(now, DeclineEntry{Node: env.Signer, Code: d.Code, Text: d.Reason()}), now)
	return nil
}

func (m *Market) onAccept(env *Signed, now time.Time) error {
	acc, err := OpenAccept(env)
	if err != nil {
		return err
	}
	run := m.auctions[string(acc.AuctionID)]
	if run == nil {
		return m.lateAccept(env, acc, now)
	}
	if run.a.Phase != PhaseAwarding || run.a.Awarded().Bidder != env.Signer || !bytes.Equal(acc.Award, run.award.Digest()) {
		return m.lateAccept(env, acc, now)
	}
	if acc.Issued > run.info.Award.AcceptBy+int64(MaxClockSkew) {
		return fmt.Errorf("%w: accept issued after the award's deadline", ErrReplay)
	}
	c := &Contract{Award: run.award, Accept: *env, info: run.info}
	m.remember(c)
	m.won(run, c, now)
	return nil
}

// lateAccept answers an accept of an award that is not pending any more:
// a withdrawn award's provider is told again that it holds no contract.
func (m *Market) lateAccept(env *Signed, acc *Accept, now time.Time) error {
	for _, rec := range m.records {
		if w := rec.withdrawnAward(acc.Award); w != nil && w.Provider == env.Signer {
			m.sendWithdraw(*w, now)
			return nil
		}
	}
	return errIgnored // a duplicate of an accept that formed the contract
}

// ownAuction returns the pending auction whose award c is (the contract may
// arrive in the host's status before its accept does).
func (m *Market) ownAuction(c *Contract) *auctionRun {
	run := m.auctions[string(c.Info().Award.AuctionID)]
	if run == nil || run.a.Phase != PhaseAwarding || run.a.Awarded().Bidder != c.Provider() || !bytes.Equal(c.Award.Sig, run.award.Sig) {
		return nil
	}
	return run
}

// won completes an auction with contract c.
func (m *Market) won(run *auctionRun, c *Contract, now time.Time) {
	run.a.Accepted(now, c.Provider())
	m.finishAuction(run)
	m.placements.Add(1)
	rec := run.rec
	if rec.auction == run {
		rec.auction = nil
	}
	rec.pending = nil
	prev := rec.contract
	m.adopt(rec, c, now)
	m.recordContract(c)
	// Tell the provider (its confirmation: it reports and bills from
	// now on), the trackers and the previous host (fencing when it returns).
	notice := m.signer.Sign(KindContract, &ContractNotice{Contract: *c})
	targets := slices.Clone(rec.req.Delegation.Guardians)
	targets = append(targets, rec.req.Requester, c.Provider())
	if prev != nil {
		targets = append(targets, prev.Provider())
	}
	slices.Sort(targets)
	for _, t := range slices.Compact(targets) {
		if t != m.self {
			m.send(t, notice)
		}
	}
	if c.Provider() == m.self {
		m.confirmHosted(c, now)
	}
	m.log.Debug("market: contract formed", "instance", rec.req.Instance.Short(), "epoch", c.Epoch(), "host", c.Provider())
}

// adopt makes c rec's current contract when it wins over what rec has.
func (m *Market) adopt(rec *record, c *Contract, now time.Time) bool {
	if rec.contract != nil && !Wins(c, rec.contract) {
		return false
	}
	if b := m.best[c.Instance()]; b == nil || Wins(c, b) {
		m.best[c.Instance()] = c
	}
	if rec.contract == nil || c.Provider() != rec.contract.Provider() {
		rec.status = nil
	}
	rec.contract = c
	rec.resumeOn = ""
	rec.maxEpoch = max(rec.maxEpoch, c.Epoch())
	rec.failed, rec.failedAt, rec.waitSince, rec.lostSince = "", time.Time{}, time.Time{}, time.Time{}
	rec.heard = now
	rec.failures = 0
	if info := c.Info(); info.Request.Generation > rec.req.Generation {
		rec.req, rec.env = info.Request, info.Award.Request
	}
	// A running auction of an older or equal epoch is moot now (its
	// pending award, if any, is withdrawn).
	if rec.auction != nil && rec.auction.a.Ann.Epoch <= c.Epoch() {
		if rec.pending != nil && !bytes.Equal(rec.pending.Award, c.Award.Digest()) {
			m.withdrawPending(rec, now)
		}
		m.finishAuction(rec.auction)
		rec.auction = nil
	}
	rec.updated = now
	m.saveRecord(rec)
	info := c.Info()
	ev := Event{Kind: EventPlaced, Instance: m.view(rec), Contract: &ContractSummary{Node: c.Provider().String(), Epoch: c.Epoch(),
		Price: info.Bid.Total, Auctioneer: info.Auctioneer.String()}}
	for i := len(m.history) - 1; i >= 0 && i >= len(m.history)-16; i-- {
		if bytes.Equal(m.history[i].a.ID, info.Award.AuctionID) {
			av := auctionView(m.history[i])
			ev.Auction = &av
			break
		}
	}
	m.notify(ev)
	return true
}

// mayGuard counts a new guardian record for requester's instance, unless
// the requester's allowance is spent: MaxGuardedPerRequester per member,
// MaxGuardedForStrangers for all requesters this node does not know as
// members together. Guardian records are never dropped, so neither are
// the counts.
func (m *Market) mayGuard(requester peer.ID) bool {
	bucket, limit := requester, MaxGuardedPerRequester
	if !m.members[requester] {
		bucket, limit = "", MaxGuardedForStrangers
	}
	if m.guarded[bucket] >= limit {
		m.log.Debug("market: guardian record refused: allowance spent", "requester", requester)
		return false
	}
	m.guarded[bucket]++
	return true
}

// trackerFor returns the record of an instance this node tracks, creating
// one when the request names this node as a guardian.
func (m *Market) trackerFor(c *Contract) *record {
	info := c.Info()
	rec := m.records[info.Request.Instance]
	if rec != nil {
		return rec
	}
	if e, ok := m.purged[info.Request.Instance]; ok && c.Epoch() <= e {
		return nil // a late word of an instance this node purged
	}
	if info.Request.Requester != m.self && !slices.Contains(info.Request.Delegation.Guardians, m.self) {
		return nil
	}
	if info.Request.Requester != m.self && !m.mayGuard(info.Request.Requester) {
		return nil
	}
	rec = &record{mine: info.Request.Requester == m.self, req: info.Request, env: info.Award.Request}
	m.records[info.Request.Instance] = rec
	m.saveRecord(rec)
	return rec
}

func (m *Market) onContract(env *Signed, now time.Time) error {
	c, err := openContractNotice(env, m.openContract)
	if err != nil {
		return err
	}
	if w := m.withdrawnByMe(c); w != nil {
		m.sendWithdraw(*w, now)
		return nil
	}
	m.confirmFrom(env.Signer, c, now)
	m.fenceHosted(c, now)
	if run := m.ownAuction(c); run != nil {
		m.won(run, c, now)
	} else if rec := m.trackerFor(c); rec != nil {
		m.adopt(rec, c, now)
	}
	return nil
}

// withdrawnByMe returns c's award if this node made it and withdrew it.
func (m *Market) withdrawnByMe(c *Contract) *awardRef {
	if c.Info().Auctioneer != m.self {
		return nil
	}
	if rec := m.records[c.Instance()]; rec != nil {
		return rec.withdrawnAward(c.Award.Digest())
	}
	return nil
}

// onOutcomeQuery answers a provider that asks (with a notice of its own
// contract) whether its accept formed a contract: the auctioneer confirms
// it or withdraws it; another tracker confirms only the contract it holds
// (or fences a losing one), and leaves the rest to the auctioneer.
func (m *Market) onOutcomeQuery(env *Signed, now time.Time) error {
	c, err := openQuery(env, m.openContract)
	if err != nil {
		return err
	}
	from := env.Signer
	rec := m.records[c.Instance()]
	switch {
	case rec != nil && rec.contract != nil && bytes.Equal(rec.contract.Digest(), c.Digest()):
		m.send(from, m.signer.Sign(KindContract, &ContractNotice{Contract: *c}))
		return nil
	case rec != nil && rec.contract != nil && Wins(rec.contract, c):
		m.send(from, m.signer.Sign(KindContract, &ContractNotice{Contract: *rec.contract}))
		return nil
	case c.Info().Auctioneer != m.self:
		return errIgnored
	}
	if w := m.withdrawnByMe(c); w != nil {
		m.sendWithdraw(*w, now)
		return nil
	}
	if run := m.ownAuction(c); run != nil {
		m.won(run, c, now) // the accept was lost; its copy came in time
		return nil
	}
	if rec := m.trackerFor(c); rec != nil && m.adopt(rec, c, now) {
		// An award of this node that it has no trace of (it lost its
		// memory): its accept came in time (the contract opened), so it
		// stands.
		m.send(from, m.signer.Sign(KindContract, &ContractNotice{Contract: *c}))
		return nil
	}
	return errIgnored
}

func (m *Market) onStatus(env *Signed, now time.Time) error {
	st, err := openStatus(env, m.openContract)
	if err != nil {
		return err
	}
	c := &st.Contract
	if w := m.withdrawnByMe(c); w != nil {
		m.sendWithdraw(*w, now)
		return nil
	}
	m.fenceHosted(c, now)
	rec := m.trackerFor(c)
	if rec == nil {
		return errIgnored
	}
	if rec.contract != nil && Wins(rec.contract, c) {
		// A stale host: fence it with the contract that won.
		m.send(env.Signer, m.signer.Sign(KindContract, &ContractNotice{Contract: *rec.contract}))
		return nil
	}
	if run := m.ownAuction(c); run != nil {
		m.won(run, c, now) // the status overtook the accept
	} else {
		m.adopt(rec, c, now)
	}
	if time.Unix(0, st.Issued).After(now.Add(MaxClockSkew)) {
		// Kept, it would make every later status of this host look older.
		return fmt.Errorf("%w: status from the future", ErrReplay)
	}
	if rec.status != nil && rec.status.Issued > st.Issued {
		return errIgnored
	}
	prevState := StatePending
	if rec.status != nil {
		prevState = rec.status.State
	}
	rec.status = st
	if !st.Draining {
		rec.lostSince = time.Time{}
	}
	rec.heard = now
	healthy, why := statusHealthy(rec.req, st)
	rec.mark(now, c, healthy, why)
	if rec.mine && st.Generation < rec.req.Generation {
		m.send(env.Signer, rec.env) // the host missed an update: send it again
	}
	rec.updated = now
	if rec.req.State == StateDestroyed && st.State == StateDestroyed {
		rec.lastHost, rec.lastEpoch = rec.contract.Provider(), rec.contract.Epoch()
		rec.contract = nil
		m.saveRecord(rec)
	}
	if st.State == StateFailed && rec.mine && rec.req.Batch && prevState != StateFailed && rec.retries < rec.req.MaxRetries && rec.auction == nil {
		rec.retries++
		if len(rec.failedOn) < maxExcludeList/2 {
			rec.failedOn = append(rec.failedOn, env.Signer)
		}
		m.startAuction(rec, now, "retry")
	}
	m.notify(Event{Kind: EventStatus, Instance: m.view(rec)})
	return nil
}

// tickRecords re-places instances whose host is lost and re-auctions those
// waiting for capacity.
func (m *Market) tickRecords(now time.Time) {
	for _, rec := range m.records {
		if rec.auction != nil || rec.req.State == StateDestroyed {
			continue
		}
		if rec.contract == nil {
			if rec.mine && rec.req.WaitForCapacity && rec.failed != "" && m.retryDue(rec, now) {
				rec.waitSince = now
				m.startAuction(rec, now, "waiting for capacity")
			}
			continue
		}
		host := rec.contract.Provider()
		if rec.status != nil && (rec.status.State == StateDone) {
			continue
		}
		if rec.mine {
			m.refreshGuardians(rec, now)
		}
		if rec.heard.IsZero() {
			rec.heard = now // restarted: give the host a full SilentAfter
		}
		silent := m.cfg.SilentAfter > 0 && host != m.self && now.Sub(rec.heard) > m.cfg.SilentAfter
		// A draining host asks for its instances to be re-placed: it
		// counts as lost (the requester, or a guardian when the requester
		// is offline, re-places it; the new contract fences the copy).
		draining := rec.status != nil && rec.status.Draining
		if m.alive(host) && !silent && !draining {
			rec.lostSince = time.Time{}
			continue
		}
		why := "host lost"
		if draining && m.alive(host) && !silent {
			why = "host draining"
		}
		if rec.lostSince.IsZero() {
			rec.lostSince = now
			if t, ok := m.unreachSince[host]; ok && t.Before(now) {
				// Unreachable by stream: lost since the first probe
				// that went unanswered, not since the verdict.
				rec.lostSince = t
			}
			if rec.contract != nil {
				rec.mark(now, rec.contract, false, why)
			}
		}
		if !rec.failedAt.IsZero() && !m.retryDue(rec, now) {
			continue // the last re-placement failed: retry later, backing off
		}
		if ShouldReplace(m.self, rec.req, now.Sub(rec.lostSince), m.member, now) {
			m.startAuction(rec, now, why)
		}
	}
}

// Wait blocks until the named instance's view satisfies cond, ctx ends or
// the market closes, and returns the last view.
func (m *Market) Wait(ctx context.Context, name string, cond func(InstanceView) bool) (InstanceView, error) {
	id := NewInstanceID(m.self, name)
	for {
		var v InstanceView
		var ok bool
		var ch chan struct{}
		if err := m.do(ctx, func() {
			if rec := m.records[id]; rec != nil {
				v, ok = m.view(rec), true
			}
			ch = m.changed
		}); err != nil {
			return v, err
		}
		if !ok {
			return v, fmt.Errorf("%w: %s", ErrNotFound, name)
		}
		if cond(v) {
			return v, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return v, ctx.Err()
		case <-m.closed:
			return v, ErrClosed
		}
	}
}

// Reached reports whether a view has reached its requested state, and an
// error when it cannot (failed, or unplaceable without waiting).
func Reached(v InstanceView) (bool, error) {
	switch {
	case v.Node != "" && v.State != StateDestroyed && v.StatusGeneration < v.Generation:
		// The host's last status predates the latest request (an
		// in-place update still being applied): even a failed state is
		// the earlier request's, which the update may fix.
		return false, nil
	case v.State == StateFailed:
		return true, fmt.Errorf("%w: %s", ErrUnplaceable, v.Reason)
	case v.State == v.RequestedState:
		return true, nil
	case v.State == StateDone && v.RequestedState == StateStarted:
		return true, nil
	}
	return false, nil
}

// refreshGuardians re-signs the request with a fresh guardian list when a
// guardian has been missing for GuardianRefresh, and sends it to the host
// and to the old and new guardians (hosts apply nothing: only the
// delegation changed).
func (m *Market) refreshGuardians(rec *record, now time.Time) {
	gs := rec.req.Delegation.Guardians
	if len(gs) == 0 || !slices.ContainsFunc(gs, func(g peer.ID) bool { return !m.member(g) }) {
		rec.guardLost = time.Time{}
		return
	}
	if rec.guardLost.IsZero() {
		rec.guardLost = now
	}
	if now.Sub(rec.guardLost) < m.cfg.GuardianRefresh {
		return
	}
	fresh := Guardians(rec.req.Instance, slices.Collect(maps.Keys(m.live)), []peer.ID{m.self}, len(gs))
	if slices.Equal(fresh, gs) {
		return
	}
	req := *rec.req
	req.Delegation.Guardians = fresh
	req.Generation = max(uint64(now.UnixNano()), rec.req.Generation+1)
	req.Timestamp = now.UnixNano()
	env := m.signer.Sign(KindRequest, &req)
	old := rec.req
	rec.req, rec.env, rec.guardLost, rec.updated = &req, env, time.Time{}, now
	m.saveRecord(rec)
	m.send(rec.contract.Provider(), env)
	sent := map[peer.ID]bool{m.self: true, rec.contract.Provider(): true}
	for _, g := range append(slices.Clone(old.Delegation.Guardians), fresh...) {
		if !sent[g] {
			sent[g] = true
			m.send(g, env)
		}
	}
	// New guardians learn the contract too.
	notice := m.signer.Sign(KindContract, &ContractNotice{Contract: *rec.contract})
	for _, g := range fresh {
		if !slices.Contains(old.Delegation.Guardians, g) && g != rec.contract.Provider() {
			m.send(g, notice)
		}
	}
	m.log.Debug("market: guardians refreshed", "instance", rec.req.Instance.Short(), "guardians", len(fresh))
}

// maxHealthMarks bounds a record's history; marks older than
// healthHistory are dropped (the one in effect at the cut is kept).
const (
	maxHealthMarks = 256
	healthHistory  = time.Hour
)

// mark records the host's verdict at now when it changed.
func (rec *record) mark(now time.Time, c *Contract, healthy bool, reason string) {
	if n := len(rec.history); n > 0 {
		l := rec.history[n-1]
		if l.epoch == c.Epoch() && l.provider == c.Provider() && l.healthy == healthy && l.reason == reason {
			return
		}
	}
	rec.history = append(rec.history, healthMark{at: now, epoch: c.Epoch(), provider: c.Provider(), healthy: healthy, reason: reason})
	cut := 0
	for cut+1 < len(rec.history) && (now.Sub(rec.history[cut+1].at) > healthHistory || len(rec.history)-cut > maxHealthMarks) {
		cut++
	}
	rec.history = rec.history[cut:]
}

// statusHealthy is the requester's reading of a host's status: healthy
// when started with nothing failing (the host reports started only once
// the recipe's test promises pass, and failing when an anomaly promise
// fails or a process is down between restarts), a finished batch job,
// stopped or destroyed as requested, or on its way there (asked to stop or
// be destroyed, the host reports its processes exiting, or the copy
// pending its destruction: it does what it was asked, and the stop ends
// the contract's billing anyway).
func statusHealthy(req *Request, st *Status) (bool, string) {
	switch {
	case st.State == StateStarted && statusHealth(st) == HealthOK, st.State == StateDone:
		return true, ""
	case (st.State == StateStopped || st.State == StateDestroyed) && st.State == req.State:
		return true, ""
	case (req.State == StateStopped || req.State == StateDestroyed) && st.State != StateFailed:
		return true, ""
	}
	why := "instance " + req.Name + " is " + st.State.String()
	if statusHealth(st) == HealthFailing && st.State == StateStarted {
		why += " but failing"
	}
	if st.Reason != "" {
		why += ": " + st.Reason
	}
	if st.LastExit != "" {
		why += " (last exit: " + st.LastExit + ")"
	}
	return false, why
}

// SliceHealth says whether the host of instance id under epoch reported it
// healthy during the whole of [from, to) — the status in effect at from and
// every one received before to — judged from the statuses received, not
// from the current view. known is false when this node tracks no such
// instance or has no status of it under that epoch up to to.
func (m *Market) SliceHealth(id InstanceID, epoch uint64, from, to time.Time) (healthy, known bool, reason string) {
	_ = m.do(context.Background(), func() {
		rec := m.records[id]
		if rec == nil {
			return
		}
		var inEffect *healthMark
		for i := range rec.history {
			h := &rec.history[i]
			if h.epoch != epoch || !h.at.Before(to) {
				continue
			}
			if !h.at.After(from) {
				inEffect = h // the latest at or before from
				continue
			}
			known = true
			if !h.healthy && reason == "" {
				reason = h.reason
			}
		}
		if inEffect != nil {
			known = true
			if !inEffect.healthy {
				reason = inEffect.reason
			}
		}
		healthy = known && reason == ""
	})
	return healthy, known, reason
}
