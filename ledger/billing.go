package ledger

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
)

// UsageSource meters the instances this node runs (the partitions
// subsystem). Usage returns what instance used in [from, to); running is
// false when this node does not run the instance (then no receipt is made).
type UsageSource interface {
	Usage(instanceID string, from, to time.Time) (u Usage, running bool, err error)
}

// Reach is a requester's verdict on whether an instance was reachable.
type Reach uint8

// Reach verdicts.
const (
	// ReachUnknown: no verdict yet (e.g. the requester's view has not caught
	// up with the receipt's epoch); the receipt is answered at a later tick.
	ReachUnknown Reach = iota
	// Reachable: acknowledge (if the receipt is otherwise consistent).
	Reachable
	// Unreachable: dispute, with the reason given.
	Unreachable
)

// String returns the verdict's name.
func (r Reach) String() string {
	switch r {
	case ReachUnknown:
		return "unknown"
	case Reachable:
		return "reachable"
	case Unreachable:
		return "unreachable"
	}
	return fmt.Sprintf("reach(%d)", uint8(r))
}

// Reachability tells a requester whether an instance it pays for was
// reachable on the receipt's provider; receipts of unreachable instances are
// disputed with the reason returned.
type Reachability interface {
	Reachable(r Receipt, provider peer.ID) (verdict Reach, reason string)
}

// ClampUsage returns u with every component limited to its cap (zero caps
// limit nothing): a provider never bills more than the contract allows.
func ClampUsage(u, caps Usage) Usage {
	c := func(v, m uint64) uint64 {
		if m != 0 && v > m {
			return m
		}
		return v
	}
	return Usage{c(u.CPUMicros, caps.CPUMicros), c(u.MemByteSeconds, caps.MemByteSeconds), c(u.MemPeakBytes, caps.MemPeakBytes), c(u.DiskByteSeconds, caps.DiskByteSeconds), c(u.NetBytes, caps.NetBytes)}
}

// SlicePeriod returns the period of slice i of contract c that may be billed:
// the slice's bounds, cut at fenceNanos (the start of a newer epoch of the
// same instance; 0 when there is none). ok is false when nothing of the
// slice may be billed.
func SlicePeriod(c Contract, i uint64, fenceNanos int64) (from, to int64, ok bool) {
	from, to = c.SliceBounds(i)
	if fenceNanos != 0 && fenceNanos < to {
		to = fenceNanos
	}
	return from, to, from < to
}

// MakeReceipt is the pure billing core: the receipt for slice i of the
// contract with CID cc, for usage u over [from, to). Usage is clamped to the
// contract's caps and the amount is Amount(c.Price, usage).
func MakeReceipt(cc cid.Cid, c Contract, i uint64, from, to int64, u Usage) Receipt {
	u = ClampUsage(u, c.Caps)
	return Receipt{Contract: cc, InstanceID: c.InstanceID, Epoch: c.Epoch, Slice: i, FromNanos: from, ToNanos: to, Usage: u, Amount: Amount(c.Price, u)}
}

// fenceOf returns the start of the earliest contract of the same instance
// with a higher epoch (0 when none).
func fenceOf(s *Set, c Contract) int64 {
	f, oe := s.newerFence(c.InstanceID, c.Epoch) // (contracts not agreed by their parties fence nothing)
	if oe != nil && f == 0 {
		f = 1
	}
	return f
}

// MaxBillingTick bounds the billing loop's default tick, so that a slice is
// billed well within BillingGrace whatever the slice length.
const MaxBillingTick = 5 * time.Second

// BillerConfig tunes the billing loop.
type BillerConfig struct {
	// Tick is how often the loop looks for completed slices and unanswered
	// receipts. Default: a quarter of the shortest slice seen, between 50 ms
	// and MaxBillingTick; 1 s when there is no contract.
	Tick time.Duration
	// RequireSync makes a provider bill a slice only once an anti-entropy
	// exchange that began after the slice ended has completed with any peer
	// (Ledger.LastSync): it then holds any newer contract of the instance
	// its peer held, and fences by it. A provider cut off from the grid —
	// possibly while the instance was re-placed under a newer epoch — bills
	// nothing until it is back, and then every slice it owes up to the
	// newer epoch's start (late receipts). A node alone — it has had no
	// peer since it started (Ledger.Alone) — bills the instances it
	// requested itself without waiting. The daemon sets it.
	RequireSync bool
}

// Biller is the daemon's billing loop. As provider, every completed slice
// of each contract it provides (and that no newer epoch fenced) becomes a
// receipt from the UsageSource. As requester, every receipt of a contract it
// requested is checked (CheckReceipt, Reachability) and acknowledged or
// disputed.
type Biller struct {
	l     *Ledger
	src   UsageSource
	reach Reachability
	cfg   BillerConfig

	mu     sync.Mutex
	billed map[cid.Cid]uint64 // contract -> next slice to bill
	warned map[cid.Cid]uint64 // contract -> slice last warned about
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once
}

// NewBiller returns a billing loop over l. src may be nil (no receipts are
// produced, receipts of others are still answered); reach may be nil (every
// consistent receipt is acknowledged).
func NewBiller(l *Ledger, src UsageSource, reach Reachability, cfg BillerConfig) *Biller {
	return &Biller{l: l, src: src, reach: reach, cfg: cfg, billed: map[cid.Cid]uint64{}, warned: map[cid.Cid]uint64{}}
}

// Start runs the loop until Close or ctx ends.
func (b *Biller) Start(ctx context.Context) {
	ctx, b.cancel = context.WithCancel(ctx)
	ch, unsub := b.l.Subscribe(1024)
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		defer unsub()
		t := b.l.cfg.Clock.NewTimer(0)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case e, ok := <-ch:
				if !ok {
					return
				}
				if e.Kind == KindReceipt {
					b.answer(ctx, []*Entry{e})
				}
			case <-t.C():
				next := b.Tick(ctx, b.l.cfg.Now())
				t.Reset(next)
			}
		}
	}()
}

// Close stops the loop and waits for it. Idempotent.
func (b *Biller) Close() error {
	b.once.Do(func() {
		if b.cancel != nil {
			b.cancel()
		}
		b.wg.Wait()
	})
	return nil
}

// Tick bills every completed slice up to now and answers every unanswered
// receipt; it returns how long to wait before the next tick.
func (b *Biller) Tick(ctx context.Context, now time.Time) time.Duration {
	me := b.l.ID()
	if me == "" {
		return time.Second
	}
	// Read before the set: what that exchange delivered is in the view below.
	synced := b.l.lastSync.Load()
	var alone int64
	if t := b.l.Alone(); !t.IsZero() {
		alone = t.UnixNano()
	}
	type job struct {
		cc   cid.Cid
		c    Contract
		span Span
		from uint64
	}
	var jobs []job
	var pending []*Entry
	shortest := time.Duration(0)
	b.l.View(func(s *Set) {
		// Both parties may record the same agreement (identical bodies); the
		// provider bills each agreement once, under the contract entry it
		// signed itself, or, when it has none (it crashed, or its append
		// failed, after it began hosting: the market does not record the
		// contract again), under the requester's agreed record of it.
		chosen := map[string]*Entry{}
		records := map[string][]*Entry{}
		for _, ce := range s.contracts {
			c := ce.Value().(Contract)
			if c.Provider != me || b.src == nil || c.SliceNanos <= 0 {
				continue
			}
			if ce.Author != me && (ce.Author != c.Requester || s.ContractErr(ce) != nil) {
				continue
			}
			k := string(ce.Body)
			records[k] = append(records[k], ce)
			if cur := chosen[k]; cur == nil || billUnder(ce, cur, me) {
				chosen[k] = ce
			}
		}
		for k, ce := range chosen {
			c := ce.Value().(Contract)
			next, ok := b.billed[ce.id]
			if !ok {
				// Receipts under any record of the agreement count.
				for _, oe := range records[k] {
					for _, re := range s.receipts[oe.id] {
						if re.Author == me {
							next = max(next, re.Value().(Receipt).Slice+1)
						}
					}
				}
			}
			jobs = append(jobs, job{ce.id, c, SpanOf(s, ce), next})
		}
		for _, ce := range s.contracts {
			c := ce.Value().(Contract)
			if sl := c.SliceLength(); sl > 0 && (shortest == 0 || sl < shortest) {
				shortest = sl
			}
			// (A node hosting its own request acks its own receipts too.)
			// Receipts under a contract that fails its check, or not by its
			// provider, are never answered (decide): not queued either.
			if c.Requester == me && s.ContractErr(ce) == nil {
				for _, re := range s.receipts[ce.id] {
					if re.Author == c.Provider && !answered(s, re.id, me) {
						pending = append(pending, re)
					}
				}
			}
		}
	})
	for _, j := range jobs {
		if now.UnixNano() < j.c.StartNanos+j.c.SliceNanos {
			continue
		}
		// Every ended slice from the first unbilled one: however long the
		// pause (a restart, an outage, waiting for a sync), the slices owed
		// are billed, late if need be.
		last := j.c.SliceAt(now) // the current, incomplete slice
		synced := synced
		if j.c.Requester == me && alone > synced {
			synced = alone // a node alone bills its own instances
		}
		for i := j.from; i < last; i++ {
			_, end := j.c.SliceBounds(i)
			if b.cfg.RequireSync && synced < end {
				break // not synced since the slice ended: a newer epoch may be unknown here
			}
			from, to, ok := SlicePeriod(j.c, i, j.span.EndNanos)
			if !ok {
				break // the span ended: stopped, destroyed, failed, or a newer epoch began
			}
			u, running, err := b.src.Usage(j.c.InstanceID, time.Unix(0, from), time.Unix(0, to))
			if err != nil && now.UnixNano()-end > int64(BillingGrace/2) {
				// No usage for a slice about to count as unbilled (the
				// metering's history is gone, e.g. after a restart): bill
				// it with no usage rather than never.
				b.l.log.Warn("ledger: billing: no usage for slice; billing it empty", "instance", j.c.InstanceID, "slice", i, "err", err)
				u, running, err = Usage{}, true, nil
			}
			if err != nil {
				b.mu.Lock()
				w, seen := b.warned[j.cc]
				b.warned[j.cc] = i
				b.mu.Unlock()
				if !seen || w != i {
					b.l.log.Warn("ledger: billing: no usage for slice; retrying", "instance", j.c.InstanceID, "slice", i, "err", err)
				}
				break
			}
			if !running {
				// Not run here, with no trace of it in the metering. It may
				// be starting (the contract is recorded before the
				// partition has it): wait a little. Past that, the
				// contract is not being served: end its span at this
				// slice, so that its slices are neither billed nor counted
				// as unbilled.
				if now.UnixNano()-end < int64(BillingGrace/2) {
					break
				}
				if _, err := b.l.Append(ctx, End{Contract: j.cc, AtNanos: from, State: EndFailed, Reason: "the instance does not run on its provider"}); err != nil {
					b.l.log.Warn("ledger: billing: append end", "instance", j.c.InstanceID, "slice", i, "err", err)
				}
				b.mu.Lock()
				b.billed[j.cc] = i + 1
				b.mu.Unlock()
				break
			}
			if _, err := b.l.Append(ctx, MakeReceipt(j.cc, j.c, i, from, to, u)); err != nil {
				b.l.log.Warn("ledger: billing: append receipt", "instance", j.c.InstanceID, "slice", i, "err", err)
				break
			}
			b.mu.Lock()
			b.billed[j.cc] = i + 1
			b.mu.Unlock()
		}
	}
	b.answer(ctx, pending)
	if shortest == 0 {
		if b.cfg.Tick > 0 {
			return b.cfg.Tick
		}
		return time.Second
	}
	if b.cfg.Tick > 0 {
		return b.cfg.Tick
	}
	return min(max(shortest/4, 50*time.Millisecond), MaxBillingTick)
}

// billUnder reports whether provider me bills under contract record a
// rather than b (same agreement): its own record first, then the lowest CID.
func billUnder(a, b *Entry, me peer.ID) bool {
	if (a.Author == me) != (b.Author == me) {
		return a.Author == me
	}
	return bytes.Compare(a.id.Bytes(), b.id.Bytes()) < 0
}

func answered(s *Set, r cid.Cid, me peer.ID) bool {
	for _, a := range s.acks[r] {
		if a.Author == me {
			return true
		}
	}
	for _, d := range s.disputes[r] {
		if d.Author == me {
			return true
		}
	}
	return false
}

// answer acknowledges or disputes receipts of contracts this node requested.
func (b *Biller) answer(ctx context.Context, receipts []*Entry) {
	for _, re := range receipts {
		body, ok := b.decide(re)
		if !ok {
			continue
		}
		if _, err := b.l.Append(ctx, body); err != nil {
			b.l.log.Warn("ledger: billing: answer receipt", "receipt", re.id, "err", err)
		}
	}
}

// decide returns the Ack or Dispute this node (the requester) files for
// receipt re, or ok false when it is not this node's to answer or not yet
// (unknown contract: anti-entropy will bring it; unknown reachability).
func (b *Biller) decide(re *Entry) (body any, ok bool) {
	me := b.l.ID()
	var r Receipt
	var provider peer.ID
	var err error
	b.l.View(func(s *Set) {
		r = re.Value().(Receipt)
		ce, known := s.contracts[r.Contract]
		if !known || ce.Value().(Contract).Requester != me || answered(s, re.id, me) {
			return
		}
		if s.ContractErr(ce) != nil || re.Author != ce.Value().(Contract).Provider {
			// A contract naming this node as requester without evidence
			// that it agreed (anyone can write one), or a receipt by
			// someone other than the provider: nothing this node owes,
			// and not answered (an answer would be an entry of ours per
			// entry of theirs). The audit reports both.
			return
		}
		provider = ce.Value().(Contract).Provider
		ok = true
		now := b.l.cfg.Now()
		err = CheckReceiptAt(s, re, now)
		if err == nil {
			err = overlapsAcked(s, re, r, me)
		}
		if err == nil && now.UnixNano() < r.ToNanos {
			// Entered within the clock-skew bound before its slice
			// ends: acknowledged (or not) once the slice has ended by
			// this node's clock, at a later tick, when its status
			// history covers the whole slice.
			ok = false
		}
	})
	if !ok {
		return nil, false
	}
	if err == nil && b.reach != nil {
		// Outside the ledger lock: the verdict may consult the market.
		switch v, reason := b.reach.Reachable(r, provider); v {
		case ReachUnknown:
			return nil, false
		case Unreachable:
			if reason == "" {
				reason = "instance was not reachable"
			}
			err = fmt.Errorf("unreachable: %s", reason)
		}
	}
	if err != nil {
		return Dispute{Receipt: re.id, Reason: trimReason(err)}, true
	}
	return Ack{Receipt: re.id, Amount: r.Amount}, true
}

// overlapsAcked returns an error when me already acknowledged another
// receipt of r's instance whose period overlaps r's. CheckReceipt flags only
// the later of two overlapping receipts in (period, CID) order, so without
// this a second bill for a slice already paid, whose CID happens to sort
// first, would be acknowledged too.
func overlapsAcked(s *Set, re *Entry, r Receipt, me peer.ID) error {
	for _, ce := range s.byInstance[r.InstanceID] {
		if s.ContractErr(ce) != nil {
			continue
		}
		for _, oe := range s.receipts[ce.id] {
			if oe.id == re.id || oe.Author != ce.Value().(Contract).Provider {
				continue
			}
			o := oe.Value().(Receipt)
			sameSlice := o.Epoch == r.Epoch && o.Slice == r.Slice
			if !sameSlice && (o.FromNanos >= r.ToNanos || r.FromNanos >= o.ToNanos) {
				continue
			}
			for _, a := range s.acks[oe.id] {
				if a.Author == me {
					return fmt.Errorf("%w: %s: period overlaps receipt %s, already acknowledged (slice billed twice)", ErrInvalid, CodeOverlap, oe.id)
				}
			}
		}
	}
	return nil
}

func trimReason(err error) string {
	s := err.Error()
	if len(s) > 300 {
		s = s[:300]
	}
	return fmt.Sprint(s)
}
