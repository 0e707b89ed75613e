package scheduler

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// bidState is an auction this node answered as a bidder: what an award
// is checked against (not the whole announcement: a flood of large ones
// would stay in memory for a minute).
type bidState struct {
	instance   InstanceID
	epoch      uint64
	auctioneer peer.ID
	bucket     peer.ID // what it counts against: the auctioneer, or "" (strangers)
	expires    time.Time
	// withdrawn are digests of awards the auctioneer withdrew (a
	// withdrawal may overtake its award).
	withdrawn [][]byte
}

// hosted is an instance this node runs under a contract.
type hosted struct {
	contract *Contract
	req      *Request
	reqEnv   Signed
	spec     InstanceSpec
	applying bool
	pending  bool
	// applied is the generation of the last spec the runner finished
	// applying; sentApplied the one the last status carried.
	applied     uint64
	sentApplied uint64
	applyErr    string
	fenced      bool
	// confirmed: the auctioneer (or a tracker holding it) confirmed the
	// contract. Until then the copy reports no status and bills nothing,
	// and asks the auctioneer for the outcome every StatusInterval; a
	// withdrawal stops it.
	confirmed bool
	lastQuery time.Time
	last      RunStatus
	lastSent  time.Time
	sentOnce  bool
	// sentDraining is whether the last status sent said the host drains.
	sentDraining bool
	// released is the status of a copy that failed for good here (a batch
	// job's run failed; a service past its restart budget): its partition
	// was freed (the runner destroyed it) and the host keeps reporting this
	// failure, with its reason, until the requester changes the request.
	released *RunStatus
}

func (m *Market) onAnnounce(env *Signed, now time.Time) error {
	ann, err := OpenAnnouncement(env, now)
	if errors.Is(err, ErrReplay) {
		// Late (or early) gossip: the relayer that delivered it is not to
		// blame (the topic validator cannot check the time).
		return errIgnored
	}
	if err != nil {
		return err
	}
	if m.noBids {
		// A requester-only or draining node is no bidder: no bid, no
		// decline (auctioneers leave it out of their bidder sets).
		return nil
	}
	key := string(ann.AuctionID)
	if _, dup := m.bidding[key]; dup {
		return errIgnored
	}
	if _, dup := m.seen[key]; dup && env.Signer != m.self {
		return errIgnored
	}
	auctioneer := env.Signer
	// Answering costs a signature, a message and state kept for a
	// minute: at most so many per auctioneer, and auctioneers this node
	// does not know as members (keys are free; members cost a join) share
	// one small allowance (a member that just joined and is not known yet
	// still gets answers).
	bucket, limit := auctioneer, MaxBidsPerAuctioneer
	if auctioneer != m.self && !m.members[auctioneer] {
		bucket, limit = "", MaxBidsForStrangers
	}
	if m.bidsBy[bucket] >= limit || len(m.bidding) >= MaxBidding {
		return errIgnored
	}
	m.seen[key] = time.Unix(0, ann.Expires)
	m.bidding[key] = &bidState{instance: ann.Instance, epoch: ann.Epoch, auctioneer: auctioneer, bucket: bucket, expires: time.Unix(0, ann.Expires)}
	m.bidsBy[bucket]++
	st := m.nodeState(ann.Requester)
	if h := m.hosted[ann.Instance]; h != nil && !h.fenced && h.spec.State != StateDestroyed {
		// Its own copy here (a stopped instance started again under a
		// new epoch): the copy's partition and resources are its own.
		st.Free = st.Free.Add(h.spec.Resources)
		st.FreePartitions++
	}
	dec := Decide(ann, st, &m.cfg.Policy)
	if !dec.Bids() || m.d.Veto == nil {
		m.answer(ann, auctioneer, dec, now)
		return nil
	}
	// The veto hook runs outside the loop; its answer comes back through eval.
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		ctx, cancel := context.WithTimeout(m.ctx, m.cfg.HookTimeout)
		allow, reason, err := m.d.Veto.Veto(ctx, ann)
		cancel()
		if err != nil {
			allow, reason = false, "veto hook failed"
		}
		if !allow {
			if reason == "" {
				reason = "vetoed by hook"
			}
			dec = Decision{Code: DeclineVeto, Text: truncate(reason, 200)}
		}
		select {
		case m.eval <- func() { m.answer(ann, auctioneer, dec, m.d.Clock.Now()) }:
		case <-m.ctx.Done():
		}
	}()
	return nil
}

func truncate(s string, n int) string {
	s = string(bytes.Map(func(r rune) rune {
		if r == '\n' || r == '\r' {
			return ' '
		}
		return r
	}, []byte(s)))
	if len(s) > n {
		return s[:n]
	}
	return s
}

func (m *Market) answer(ann *Announcement, auctioneer peer.ID, dec Decision, now time.Time) {
	if !dec.Bids() {
		m.send(auctioneer, m.signer.Sign(KindDecline, &Decline{AuctionID: ann.AuctionID, Code: dec.Code, Text: dec.Text}))
		return
	}
	rtt, _ := m.d.Membership.RTT(ann.Requester)
	if ann.Requester == m.self {
		rtt = 0
	}
	// The bid repeats the announcement's slice (Decide declined any other;
	// 0 for an older auctioneer, which could not read a bid stating one).
	bid := &Bid{AuctionID: ann.AuctionID, Prices: m.cfg.Policy.Prices, Total: dec.Total, Fit: dec.Fit, RTT: rtt,
		Expires: now.Add(m.cfg.BidTTL).UnixNano(), Slice: ann.Slice}
	m.send(auctioneer, m.signer.Sign(KindBid, bid))
}

// nodeState is this node's view of itself for Decide.
func (m *Market) nodeState(requester peer.ID) NodeState {
	total, free, parts := m.d.Runner.Capacity()
	st := NodeState{Self: m.self, Capacity: total, Free: m.freeResources(total, free), FreePartitions: parts - m.pendingPartitions()}
	if requester == m.self {
		st.RTT, st.RTTKnown = 0, true
	} else {
		st.RTT, st.RTTKnown = m.d.Membership.RTT(requester)
	}
	if m.d.Balances != nil {
		st.Balance, st.BalanceKnown = m.d.Balances.Balance(requester)
	}
	return st
}

// freeResources is what is free once the hosted instances the runner may
// not account for yet are counted: min(runner's free, total - hosted).
func (m *Market) freeResources(total, free Resources) Resources {
	used := Resources{}
	for _, h := range m.hosted {
		if !h.fenced && h.spec.State != StateDestroyed {
			used = used.Add(h.spec.Resources)
		}
	}
	left := total.Sub(used)
	return Resources{min(left.CPUMillis, free.CPUMillis), min(left.MemoryBytes, free.MemoryBytes), min(left.DiskBytes, free.DiskBytes)}
}

// pendingPartitions counts hosted instances the runner does not report yet.
func (m *Market) pendingPartitions() int {
	n := 0
	for id, h := range m.hosted {
		if _, ok := m.d.Runner.Status(id); !ok && !h.fenced && h.spec.State != StateDestroyed {
			n++
		}
	}
	return n
}

func (m *Market) onAward(env *Signed, now time.Time) error {
	info, err := OpenAward(env)
	if err != nil {
		return err
	}
	aw := info.Award
	if info.Provider != m.self {
		return fmt.Errorf("%w: award for %s sent to %s", ErrUnauthorized, info.Provider, m.self)
	}
	issued := time.Unix(0, aw.Issued)
	if issued.After(now.Add(MaxClockSkew)) || now.Sub(issued) > MaxAwardAge {
		return fmt.Errorf("%w: award issued at %s", ErrReplay, issued.UTC().Format(time.RFC3339))
	}
	bs := m.bidding[string(aw.AuctionID)]
	if bs == nil || bs.auctioneer != env.Signer || bs.instance != info.Request.Instance || aw.Epoch < bs.epoch || aw.Epoch-bs.epoch >= MaxAwards {
		return fmt.Errorf("%w: award for an auction this node did not bid in", ErrReplay)
	}
	id := info.Request.Instance
	refuse := func(text string) error {
		m.send(env.Signer, m.signer.Sign(KindDecline, &Decline{AuctionID: aw.AuctionID, Code: DeclineAwardInvalid, Text: text}))
		return nil
	}
	if h := m.hosted[id]; h != nil && h.contract.Info().Award.AuctionID != nil && bytes.Equal(h.contract.Info().Award.AuctionID, aw.AuctionID) {
		// The same award again: accept again (idempotent).
		m.send(env.Signer, h.contract.Accept)
		return nil
	}
	if slices.ContainsFunc(bs.withdrawn, func(d []byte) bool { return bytes.Equal(d, env.Digest()) }) {
		return refuse("award withdrawn")
	}
	if aw.AcceptBy != 0 && now.UnixNano() > aw.AcceptBy+int64(MaxClockSkew) {
		return refuse("award expired before it arrived")
	}
	if s := m.cfg.Policy.Slice; s > 0 && aw.Slice != 0 && aw.Slice != int64(s) {
		return refuse(fmt.Sprintf("slice %s differs from this node's %s", time.Duration(aw.Slice), s))
	}
	if b := m.best[id]; b != nil && b.Epoch() >= aw.Epoch {
		return refuse(fmt.Sprintf("epoch %d is not newer than %d", aw.Epoch, b.Epoch()))
	}
	if h := m.hosted[id]; h != nil && h.req.Generation > info.Request.Generation {
		return refuse("request generation is older than the one hosted")
	}
	st := m.nodeState(info.Request.Requester)
	if h := m.hosted[id]; h != nil && !h.fenced && h.spec.State != StateDestroyed {
		st.Free = st.Free.Add(h.spec.Resources) // re-placed onto the same node
		st.FreePartitions++
	}
	if !info.Request.Resources.Fits(st.Free) || st.FreePartitions <= 0 {
		return refuse("capacity taken since the bid")
	}
	acc := m.signer.Sign(KindAccept, &Accept{AuctionID: aw.AuctionID, Award: env.Digest(), Issued: now.UnixNano()})
	c := &Contract{Award: *env, Accept: acc, info: info}
	m.remember(c)
	m.host(c, now)
	m.hosted[id].lastQuery = now
	m.send(env.Signer, acc)
	// The contract goes to the ledger once the auctioneer confirms it
	// (confirmHosted): an accept that arrives after the award timed out
	// forms no contract.
	return nil
}

// confirmFrom confirms the local copy under c when from may vouch for it:
// its auctioneer, its requester or a guardian its request names (trackers
// hold only contracts their auctioneer formed).
func (m *Market) confirmFrom(from peer.ID, c *Contract, now time.Time) {
	req := c.Info().Request
	if from != c.Info().Auctioneer && from != req.Requester && !slices.Contains(req.Delegation.Guardians, from) {
		return
	}
	m.confirmHosted(c, now)
}

// confirmHosted marks the copy under c confirmed: it records the contract
// in the ledger and starts reporting.
func (m *Market) confirmHosted(c *Contract, now time.Time) {
	h := m.hosted[c.Instance()]
	if h == nil || h.confirmed || h.fenced || !bytes.Equal(h.contract.Digest(), c.Digest()) {
		return
	}
	h.confirmed = true
	m.saveHosted(h)
	m.recordContract(c)
	m.report(c.Instance(), h, now)
}

// onWithdraw stops the copy started under an award its auctioneer gave up
// on before the accept reached it: no contract, nothing to bill.
func (m *Market) onWithdraw(env *Signed, now time.Time) error {
	w, err := OpenWithdraw(env)
	if err != nil {
		return err
	}
	used := false
	if bs := m.bidding[string(w.AuctionID)]; bs != nil && bs.auctioneer == env.Signer && len(bs.withdrawn) < MaxAwards {
		bs.withdrawn = append(bs.withdrawn, w.Award)
		used = true
	}
	for id, h := range m.hosted {
		if !bytes.Equal(h.contract.Award.Digest(), w.Award) || h.contract.Info().Auctioneer != env.Signer {
			continue
		}
		if h.confirmed {
			m.log.Warn("market: withdrawal of a confirmed contract ignored", "instance", id.Short(), "auctioneer", env.Signer)
			return errIgnored
		}
		if h.fenced {
			return nil
		}
		h.fenced = true
		m.withdrawn.Add(1)
		spec := h.spec
		spec.State = StateDestroyed
		m.applySpec(h, spec)
		m.saveHosted(h)
		m.log.Info("market: copy of a withdrawn award stopped", "instance", id.Short(), "epoch", h.contract.Epoch())
		m.notify(Event{Kind: EventFenced, Hosted: m.hostedView(h)})
		return nil
	}
	if !used {
		return errIgnored
	}
	return nil
}

// StopUnpaid stops the local copy of instance id hosted under contract
// epoch when it is meant to run although its requester has ended that
// contract's billing (the caller read an end by the requester in the
// ledger): a requester that stopped paying gets no more service. A
// requester of this version ends a contract only when it asked for a stop
// or a destruction, which its host carries out anyway (this also covers
// such a request that never reached the host); it runs an instance again
// under a new contract. A newer request applies as usual. It reports
// whether it stopped the copy.
func (m *Market) StopUnpaid(ctx context.Context, id InstanceID, epoch uint64) (bool, error) {
	stopped := false
	err := m.do(ctx, func() {
		h := m.hosted[id]
		if h == nil || h.fenced || h.released != nil || h.contract.Epoch() != epoch || h.spec.State != StateStarted {
			return
		}
		if rs, ok := m.d.Runner.Status(id); ok && rs.State == StateFailed {
			return // failed for good: report releases it
		}
		spec := h.spec
		spec.State = StateStopped
		m.applySpec(h, spec)
		m.saveHosted(h)
		stopped = true
		m.log.Warn("market: copy stopped: its requester ended the contract's billing", "instance", id.Short(), "epoch", epoch, "requester", h.req.Requester)
	})
	return stopped, err
}

// host starts (or updates) the local copy under contract c.
func (m *Market) host(c *Contract, now time.Time) {
	info := c.Info()
	req := info.Request
	m.best[req.Instance] = c
	h := m.hosted[req.Instance]
	if h == nil {
		h = &hosted{}
		m.hosted[req.Instance] = h
	}
	h.contract, h.req, h.reqEnv, h.fenced, h.sentOnce, h.confirmed = c, req, info.Award.Request, false, false, false
	m.applySpec(h, specOf(req, c.Epoch()))
	m.saveHosted(h)
	m.notify(Event{Kind: EventHosting, Hosted: m.hostedView(h)})
}

func specOf(req *Request, epoch uint64) InstanceSpec {
	return InstanceSpec{
		Instance: req.Instance, Name: req.Name, Requester: req.Requester, RecipeCID: req.RecipeCID,
		SoftwareType: req.SoftwareType, Params: maps.Clone(req.Params), Resources: req.Resources,
		State: req.State, Epoch: epoch, Generation: req.Generation, Batch: req.Batch,
	}
}

// applySpec makes spec h's desired state and hands it to the runner from
// a goroutine, one apply at a time per instance (a later spec waits for the
// running apply, so a destroy can never be overtaken by an older start);
// the outcome comes back through eval.
func (m *Market) applySpec(h *hosted, spec InstanceSpec) {
	if spec.State != StateDestroyed {
		h.released = nil // asked to run again: a fresh try
	}
	h.spec = spec
	if h.applying {
		h.pending = true
		return
	}
	h.applying = true
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		err := m.d.Runner.Apply(m.ctx, spec)
		select {
		case m.eval <- func() {
			h.applying = false
			if h.pending {
				h.pending = false
				m.applySpec(h, h.spec)
				return
			}
			h.applied = h.spec.Generation // h.spec equals spec, up to delegation-only updates
			h.applyErr = ""
			if err != nil {
				h.applyErr = err.Error()
			}
			if m.hosted[spec.Instance] == h {
				m.report(spec.Instance, h, m.d.Clock.Now())
			}
		}:
		case <-m.ctx.Done():
		}
	}()
}

// fenceHosted stops the local copy when c wins over the contract it runs under.
func (m *Market) fenceHosted(c *Contract, now time.Time) {
	id := c.Instance()
	b, known := m.best[id]
	if !known && m.hosted[id] == nil && m.records[id] == nil && !m.tracks(c) {
		return // a stranger's contract: keeping it would let any peer grow best without bound
	}
	if b == nil || Wins(c, b) {
		m.best[id] = c
	}
	h := m.hosted[id]
	if h == nil || h.fenced || !ShouldStop(m.self, h.contract, c) {
		return
	}
	h.fenced = true
	m.fenced.Add(1)
	spec := h.spec
	spec.State = StateDestroyed
	m.applySpec(h, spec)
	m.saveHosted(h)
	// The copy's trackers may not know the contract that fenced it (it
	// came from another tracker, on the other side of a healed partition):
	// a requester still holding the contract of this copy would take its
	// live host for the instance's and never place it again if the
	// winning contract's host is dead. This copy reports nothing more, so
	// tell them now.
	notice := m.signer.Sign(KindContract, &ContractNotice{Contract: *c})
	targets := append([]peer.ID{h.req.Requester}, h.req.Delegation.Guardians...)
	targets = append(targets, h.contract.Info().Request.Delegation.Guardians...)
	slices.Sort(targets)
	for _, t := range slices.Compact(targets) {
		if t != m.self && t != c.Provider() {
			m.send(t, notice)
		}
	}
	m.log.Info("market: stale copy fenced", "instance", id.Short(), "mine", h.contract.Epoch(), "newer", c.Epoch(), "host", c.Provider())
	m.notify(Event{Kind: EventFenced, Hosted: m.hostedView(h)})
}

// tracks reports whether this node is the requester or a guardian of c's
// instance (trackerFor creates its record).
func (m *Market) tracks(c *Contract) bool {
	req := c.Info().Request
	return req.Requester == m.self || slices.Contains(req.Delegation.Guardians, m.self)
}

// onRequestUpdate applies a newer generation of a request to the local
// copy (the requester changed parameters or state), and keeps guardians'
// copies current.
func (m *Market) onRequestUpdate(env *Signed, now time.Time) error {
	req, err := OpenRequest(env)
	if err != nil {
		return err
	}
	if time.Unix(0, req.Timestamp).After(now.Add(MaxClockSkew)) {
		return fmt.Errorf("%w: request from the future", ErrReplay)
	}
	used := false
	if rec := m.records[req.Instance]; rec != nil && !rec.mine && bytes.Equal(rec.env.Sig, env.Sig) {
		used = true // the request held already (a host repeats it to former guardians)
	} else if rec != nil && !rec.mine {
		if req.Generation <= rec.req.Generation {
			return fmt.Errorf("%w: generation %d is not newer than %d", ErrReplay, req.Generation, rec.req.Generation)
		}
		rec.req, rec.env = req, *env
		m.saveRecord(rec)
		used = true
	} else if rec == nil && req.Requester != m.self && slices.Contains(req.Delegation.Guardians, m.self) && m.mayGuard(req.Requester) {
		// Newly named guardian: the contract follows in a notice.
		rec = &record{req: req, env: *env, updated: now}
		m.records[req.Instance] = rec
		m.saveRecord(rec)
		used = true
	}
	if h := m.hosted[req.Instance]; h != nil && !h.fenced {
		if req.Generation <= h.req.Generation {
			return fmt.Errorf("%w: generation %d is not newer than %d", ErrReplay, req.Generation, h.req.Generation)
		}
		h.req, h.reqEnv = req, *env
		spec := specOf(req, h.contract.Epoch())
		same := h.spec
		same.Generation = spec.Generation
		if reflect.DeepEqual(same, spec) {
			h.spec.Generation = spec.Generation // only the delegation changed: nothing to apply
			if !h.applying {
				h.applied = spec.Generation
			}
		} else {
			m.applySpec(h, spec)
		}
		m.saveHosted(h)
		used = true
	}
	if !used {
		return errIgnored
	}
	return nil
}

// tickHosted polls the runner and sends statuses to the requester and
// guardians when something changed, or every StatusInterval.
func (m *Market) tickHosted(now time.Time) {
	for id, h := range m.hosted {
		m.report(id, h, now)
	}
}

// report sends h's status when it changed or is due, and forgets copies
// that are gone.
func (m *Market) report(id InstanceID, h *hosted, now time.Time) {
	rs, ok := m.d.Runner.Status(id)
	if !ok {
		rs = RunStatus{State: StatePending}
		if h.spec.State == StateDestroyed && !h.applying {
			rs = RunStatus{State: StateDestroyed}
		}
	}
	if h.applyErr != "" && !h.applying {
		rs = RunStatus{State: StateFailed, Reason: h.applyErr}
	}
	switch {
	case h.released != nil && h.req.State == StateDestroyed:
		// destroyed as asked since: report that
	case h.released != nil:
		rs = *h.released
	case ok && rs.State == StateFailed && h.applyErr == "" && !h.applying && !h.fenced && h.spec.State == StateStarted:
		// Failed for good on this host: free its partition at once (a
		// failed copy must not hold a slot until someone destroys it by
		// hand) and keep reporting the failure.
		f := rs
		h.released = &f
		spec := h.spec
		spec.State = StateDestroyed
		m.applySpec(h, spec)
	}
	if h.fenced {
		switch {
		case h.applying:
		case !ok || rs.State == StateDestroyed:
			m.dropHosted(id)
		default:
			m.applySpec(h, h.spec) // the runner still has it: destroy again
		}
		return // a fenced copy reports nothing more and bills nothing
	}
	if !h.confirmed {
		// Ask the auctioneer (or, when it is gone, the requester) for the
		// outcome of the accept; report nothing until it is known.
		if now.Sub(h.lastQuery) >= m.cfg.StatusInterval {
			h.lastQuery = now
			to := h.contract.Info().Auctioneer
			if !m.alive(to) {
				to = h.req.Requester
			}
			m.send(to, m.signer.Sign(KindQuery, &ContractNotice{Contract: *h.contract}))
		}
		return
	}
	draining := m.noBids && !m.cfg.NoBids
	changed := !h.sentOnce || h.applied != h.sentApplied || draining != h.sentDraining || rs.State != h.last.State || rs.Reason != h.last.Reason || rs.Result != h.last.Result || !maps.Equal(rs.Connection, h.last.Connection) ||
		rs.Health != h.last.Health || rs.Restarts != h.last.Restarts || rs.LastExit != h.last.LastExit
	if !changed && now.Sub(h.lastSent) < m.cfg.StatusInterval {
		return
	}
	h.last, h.lastSent, h.sentOnce, h.sentApplied, h.sentDraining = rs, now, true, h.applied, draining
	st := &Status{Contract: *h.contract, Generation: h.req.Generation, State: rs.State, Connection: rs.Connection,
		Reason: truncate(rs.Reason, 1024), Result: rs.Result, Issued: now.UnixNano(), Applied: min(h.applied, h.req.Generation),
		Restarts: rs.Restarts, LastExit: truncate(rs.LastExit, 1024), Draining: draining}
	if rs.Health == HealthFailing {
		st.Health = HealthFailing // ok and unknown follow from State (see Status.Health)
	}
	if len(st.Connection) > MaxParams {
		st.Connection = nil
		st.Reason = "too many connection parameters"
	}
	env := m.signer.Sign(KindStatus, st)
	targets := append([]peer.ID{h.req.Requester}, h.req.Delegation.Guardians...)
	for _, t := range slices.Compact(targets) {
		m.send(t, env)
	}
	// The guardians named when this contract was awarded, and dropped
	// since (the requester refreshed them while they were cut off), may
	// be the only trackers a copy that lost to this one still reports to:
	// they must learn this contract to fence it, and the request that no
	// longer names them, so that they do not place the instance again.
	award := h.contract.Info().Request
	for _, g := range award.Delegation.Guardians {
		if slices.Contains(targets, g) || g == m.self {
			continue
		}
		if h.req.Generation > award.Generation {
			m.send(g, h.reqEnv)
		}
		m.send(g, env)
	}
	if changed {
		m.notify(Event{Kind: EventHosting, Hosted: m.hostedView(h)})
	}
	if h.req.State == StateDestroyed && rs.State == StateDestroyed && !h.applying {
		m.dropHosted(id)
	}
}

func (m *Market) tickBidding(now time.Time) {
	for k, b := range m.bidding {
		if now.After(b.expires.Add(MaxAwardAge)) {
			delete(m.bidding, k)
			if m.bidsBy[b.bucket]--; m.bidsBy[b.bucket] <= 0 {
				delete(m.bidsBy, b.bucket)
			}
		}
	}
	for k, exp := range m.seen {
		if now.After(exp.Add(MaxAwardAge)) {
			delete(m.seen, k)
		}
	}
}

// LearnContract gives the market a contract it learned outside the market
// protocol — from the replicated ledger, which holds only contracts both
// sides signed — as if a peer had sent it: a local copy under an older
// epoch is fenced (its process stops, its partition is freed, its billing
// ends, and its requester and guardians are told), and the requester's or
// a guardian's record of the placed instance adopts it when it is newer:
// it watches the newer contract's host (and places the instance again if
// that host is gone), and its next placement takes an epoch above it. A contract naming an instance
// this node neither hosts nor tracks changes nothing.
func (m *Market) LearnContract(ctx context.Context, c *Contract) error {
	var err error
	if derr := m.do(ctx, func() {
		if err = m.openContract(c); err != nil || m.withdrawnByMe(c) != nil {
			return // an award this node withdrew stands nowhere
		}
		now := m.d.Clock.Now()
		m.fenceHosted(c, now)
		if rec := m.records[c.Instance()]; rec != nil && rec.contract != nil && m.ownAuction(c) == nil {
			m.adopt(rec, c, now)
		}
	}); derr != nil {
		return derr
	}
	return err
}
