package ledger

import (
	"encoding/json"
	"fmt"
	"math"
	"math/bits"
	"strconv"
	"strings"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Kind says what an entry's body is.
type Kind uint8

// The entry kinds. Values are part of the signed encoding: never renumber.
const (
	// KindContract is an award accepted by a provider (body Contract).
	KindContract Kind = 1
	// KindReceipt is a provider's bill for one slice (body Receipt).
	KindReceipt Kind = 2
	// KindAck is the requester's co-signature of a receipt (body Ack).
	KindAck Kind = 3
	// KindDispute is the requester's refusal of a receipt (body Dispute).
	KindDispute Kind = 4
	// KindGrant issues credits to a peer (body Grant).
	KindGrant Kind = 5
	// KindCheckpoint records the root an author saw (body Checkpoint).
	KindCheckpoint Kind = 6
	// KindEnd ends a contract's billable span: the instance was stopped,
	// destroyed or failed for good (body End).
	KindEnd Kind = 7
)

// String returns the kind's lower-case name.
func (k Kind) String() string {
	switch k {
	case KindContract:
		return "contract"
	case KindReceipt:
		return "receipt"
	case KindAck:
		return "ack"
	case KindDispute:
		return "dispute"
	case KindGrant:
		return "grant"
	case KindCheckpoint:
		return "checkpoint"
	case KindEnd:
		return "end"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// ParseKind is the inverse of Kind.String.
func ParseKind(s string) (Kind, error) {
	for k := KindContract; k <= KindEnd; k++ {
		if k.String() == s {
			return k, nil
		}
	}
	return 0, fmt.Errorf("%w: unknown kind %q", ErrMalformed, s)
}

func (k Kind) valid() bool { return k >= KindContract && k <= KindEnd }

// Usage is what an instance consumed during one slice (or, in a contract's
// Caps, the most it may consume in one full slice). Integers only, so that
// amounts are bit-identical on every node. Units are fine-grained (CPU in
// microseconds, memory and disk in byte-seconds) so that a lightly loaded
// instance still shows its use in a one-second slice.
type Usage struct {
	// CPUMicros is CPU time used, in microseconds (1,000,000 = one core for
	// one second).
	CPUMicros uint64 `cbor:"1,keyasint,omitempty" json:"cpu_us"`
	// MemByteSeconds is memory use integrated over the period, in byte-seconds
	// (average resident bytes × seconds).
	MemByteSeconds uint64 `cbor:"2,keyasint,omitempty" json:"mem_byte_seconds"`
	// MemPeakBytes is the highest resident memory seen in the period, in bytes.
	MemPeakBytes uint64 `cbor:"3,keyasint,omitempty" json:"mem_peak_bytes"`
	// DiskByteSeconds is disk space held integrated over the period, in byte-seconds.
	DiskByteSeconds uint64 `cbor:"4,keyasint,omitempty" json:"disk_byte_seconds"`
	// NetBytes is network traffic in and out, in bytes.
	NetBytes uint64 `cbor:"5,keyasint,omitempty" json:"net_bytes"`
}

// Within reports whether every component of u is at most the matching
// component of caps. A zero cap means "no cap" for that resource.
func (u Usage) Within(caps Usage) bool {
	le := func(v, c uint64) bool { return c == 0 || v <= c }
	return le(u.CPUMicros, caps.CPUMicros) && le(u.MemByteSeconds, caps.MemByteSeconds) &&
		le(u.MemPeakBytes, caps.MemPeakBytes) && le(u.DiskByteSeconds, caps.DiskByteSeconds) &&
		le(u.NetBytes, caps.NetBytes)
}

// Money units. The ledger counts money in integer pico-credits (pcr) so that
// the bill of a lightly loaded instance over a one-second slice is not
// rounded away; prices are signed, like the market's price list, in
// micro-credits (µcr) per hour. Every money figure in JSON (amounts,
// balances, prices, grants) is an integer number of pico-credits: Price's
// JSON form converts. People see credits with CreditDecimals decimals.
const (
	// PicoPerMicro is the number of pico-credits in one micro-credit.
	PicoPerMicro = 1_000_000
	// PicoPerCredit is the number of pico-credits in one credit.
	PicoPerCredit = 1_000_000_000_000
)

// Price is what a provider charges, in integer micro-credits (1 credit =
// 1,000,000 micro-credits) per hour of each resource: the market's price
// list, unchanged, as signed (CBOR). Its JSON form is in pico-credits per
// hour-unit, like every money figure in JSON (MarshalJSON).
type Price struct {
	// CPU is micro-credits per core-hour (3.6e9 CPUMicros).
	CPU uint64 `cbor:"1,keyasint,omitempty" json:"cpu_per_core_h"`
	// Mem is micro-credits per GiB-hour of memory (3600 × 2^30 MemByteSeconds).
	Mem uint64 `cbor:"2,keyasint,omitempty" json:"mem_per_gib_h"`
	// Disk is micro-credits per GiB-hour of disk (3600 × 2^30 DiskByteSeconds).
	Disk uint64 `cbor:"3,keyasint,omitempty" json:"disk_per_gib_h"`
	// Net is micro-credits per GiB of traffic (2^30 NetBytes).
	Net uint64 `cbor:"4,keyasint,omitempty" json:"net_per_gib"`
}

// priceJSON is Price's JSON form: pico-credits per hour-unit, written as
// json.Number to stay exact beyond 2^64.
type priceJSON struct {
	CPU  json.Number `json:"cpu_per_core_h"`
	Mem  json.Number `json:"mem_per_gib_h"`
	Disk json.Number `json:"disk_per_gib_h"`
	Net  json.Number `json:"net_per_gib"`
}

// microToPico writes µcr as an integer number of pico-credits, exactly.
func microToPico(v uint64) json.Number {
	if v == 0 {
		return "0"
	}
	return json.Number(strconv.FormatUint(v, 10) + "000000")
}

// picoToMicro reads an integer number of pico-credits that is a whole
// number of micro-credits ("" is 0).
func picoToMicro(n json.Number) (uint64, error) {
	s := strings.TrimLeft(string(n), "0")
	switch {
	case s == "":
		return 0, nil
	case strings.Trim(s, "0123456789") != "":
		return 0, fmt.Errorf("%w: price %q: want an integer number of pico-credits", ErrMalformed, n)
	case len(s) <= 6 || s[len(s)-6:] != "000000":
		return 0, fmt.Errorf("%w: price %s pico-credits is not a whole number of micro-credits", ErrMalformed, n)
	}
	v, err := strconv.ParseUint(s[:len(s)-6], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: price %s: %v", ErrMalformed, n, err)
	}
	return v, nil
}

// MarshalJSON writes the prices in pico-credits per hour-unit.
func (p Price) MarshalJSON() ([]byte, error) {
	return json.Marshal(priceJSON{microToPico(p.CPU), microToPico(p.Mem), microToPico(p.Disk), microToPico(p.Net)})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (p *Price) UnmarshalJSON(b []byte) error {
	var j priceJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	var q Price
	var err error
	for _, f := range []struct {
		n  json.Number
		to *uint64
	}{{j.CPU, &q.CPU}, {j.Mem, &q.Mem}, {j.Disk, &q.Disk}, {j.Net, &q.Net}} {
		if *f.to, err = picoToMicro(f.n); err != nil {
			return err
		}
	}
	*p = q
	return nil
}

// Factors turning usage × price (µcr per hour-unit) into pico-credits:
// cost = usage × price × mul / div, with mul/div = 10^6 pcr/µcr ÷ units per
// price unit, reduced so that every intermediate stays small.
//
//	CPU:  10^6 / 3.6e9 µs          = 1 / 3600
//	Mem:  10^6 / (3600 × 2^30) B·s = 2500 / (9 × 2^30)
//	Net:  10^6 / 2^30 B            = 15625 / 2^24
const (
	cpuMul, cpuDiv = 1, 3600
	byteSecMul     = 2500
	byteSecDiv     = 9 << 30
	netMul, netDiv = 15625, 1 << 24
)

// Amount is the price of usage u at price p, in pico-credits.
//
// Rounding: each resource's cost is usage × price × 10^6 / (units per price
// unit), computed exactly (128-bit intermediate) and rounded down (floor);
// the four costs are then added. A total that would exceed 2^64-1
// saturates at math.MaxUint64. The function is pure and uses integers
// only, so every node computes the same amount bit for bit.
func Amount(p Price, u Usage) uint64 {
	var total uint64
	for _, t := range [...]struct{ units, price, mul, div uint64 }{
		{u.CPUMicros, p.CPU, cpuMul, cpuDiv},
		{u.MemByteSeconds, p.Mem, byteSecMul, byteSecDiv},
		{u.DiskByteSeconds, p.Disk, byteSecMul, byteSecDiv},
		{u.NetBytes, p.Net, netMul, netDiv},
	} {
		c := mulDiv(t.units, t.price, t.mul, t.div)
		s, carry := bits.Add64(total, c, 0)
		if carry != 0 {
			return math.MaxUint64
		}
		total = s
	}
	return total
}

// mulDiv returns floor(a×b×m/d) for m, d < 2^34, saturating at MaxUint64.
// With a×b = q×d + r: a×b×m/d = q×m + r×m/d, and r×m < 2^68 is split the
// same way.
func mulDiv(a, b, m, d uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	if hi >= d {
		return math.MaxUint64
	}
	q, r := bits.Div64(hi, lo, d)
	qhi, qm := bits.Mul64(q, m)
	if qhi != 0 {
		return math.MaxUint64
	}
	rhi, rlo := bits.Mul64(r, m)
	frac, _ := bits.Div64(rhi, rlo, d) // rhi < d since r < d
	s, carry := bits.Add64(qm, frac, 0)
	if carry != 0 {
		return math.MaxUint64
	}
	return s
}

// Estimate is the most a contract at price p with per-slice caps can bill for
// one full slice: Amount(p, caps), in pico-credits.
func (p Price) Estimate(caps Usage) uint64 { return Amount(p, caps) }

// Contract is an award accepted by a provider: who runs which instance for
// whom, at what price, under which epoch. Its entry's CID is the contract ID
// that receipts reference. The author must be the requester, the provider,
// or the Auctioneer (a guardian acting under the requester's delegation).
type Contract struct {
	// InstanceID is the instance this contract runs (stable across epochs).
	InstanceID string `cbor:"1,keyasint" json:"instance_id"`
	// Request is the requester's name for the instance.
	Request string `cbor:"2,keyasint,omitempty" json:"request,omitempty"`
	// Requester pays.
	Requester peer.ID `cbor:"3,keyasint" json:"requester"`
	// Provider runs the instance and earns.
	Provider peer.ID `cbor:"4,keyasint" json:"provider"`
	// Epoch fences re-placements: a contract for the same instance with a
	// higher epoch supersedes this one from its Start on.
	Epoch uint64 `cbor:"5,keyasint" json:"epoch"`
	// Price is the agreed price per resource unit.
	Price Price `cbor:"6,keyasint" json:"price"`
	// Caps is the most the instance may use in one full slice (zero = no cap).
	Caps Usage `cbor:"7,keyasint" json:"caps"`
	// SliceNanos is the slice length in nanoseconds.
	SliceNanos int64 `cbor:"8,keyasint" json:"slice_ns"`
	// StartNanos is when slice 0 begins, Unix nanoseconds.
	StartNanos int64 `cbor:"9,keyasint" json:"start_ns"`
	// RecipeCID is the recipe's CID in string form.
	RecipeCID string `cbor:"10,keyasint,omitempty" json:"recipe_cid,omitempty"`
	// Auction optionally names the auction or award this contract closes.
	Auction string `cbor:"11,keyasint,omitempty" json:"auction,omitempty"`
	// Evidence optionally carries the market's signed award and acceptance
	// (opaque to the ledger), so anyone can check the contract was agreed.
	Evidence []byte `cbor:"12,keyasint,omitempty" json:"evidence,omitempty"`
	// Auctioneer is the signer of the award when it is not the requester: a
	// guardian that re-placed the instance under the requester's signed
	// delegation (in the request inside Evidence). It may write the
	// contract; the evidence check verifies the delegation. Empty when the
	// requester awarded (so such contracts encode as before).
	Auctioneer peer.ID `cbor:"13,keyasint,omitempty" json:"auctioneer,omitempty"`
}

// SliceLength is c.SliceNanos as a duration.
func (c Contract) SliceLength() time.Duration { return time.Duration(c.SliceNanos) }

// Start is c.StartNanos as a time.
func (c Contract) Start() time.Time { return time.Unix(0, c.StartNanos).UTC() }

// SliceBounds returns the Unix-nanosecond bounds [start, end) of slice i.
func (c Contract) SliceBounds(i uint64) (start, end int64) {
	start = c.StartNanos + int64(i)*c.SliceNanos
	return start, start + c.SliceNanos
}

// HasSlice reports whether slice i of c has bounds that SliceBounds can
// compute: c's start and slice length positive, and the slice's end within
// int64. An index above that would wrap, naming a period before the
// contract's start or another slice's period.
func (c Contract) HasSlice(i uint64) bool {
	if c.SliceNanos <= 0 || c.StartNanos <= 0 {
		return false
	}
	n := (math.MaxInt64 - c.StartNanos) / c.SliceNanos // slices that fit
	return i < uint64(n)
}

// SliceAt returns the index of the slice containing t (0 before Start).
func (c Contract) SliceAt(t time.Time) uint64 {
	d := t.UnixNano() - c.StartNanos
	if d < 0 || c.SliceNanos <= 0 {
		return 0
	}
	return uint64(d / c.SliceNanos)
}

// Receipt is a provider's signed bill for one slice of one contract.
// Amount must equal Amount(contract.Price, Usage).
type Receipt struct {
	// Contract is the CID of the contract entry.
	Contract cid.Cid `cbor:"1,keyasint" json:"contract"`
	// InstanceID repeats the contract's instance, for statements.
	InstanceID string `cbor:"2,keyasint" json:"instance_id"`
	// Epoch repeats the contract's epoch.
	Epoch uint64 `cbor:"3,keyasint" json:"epoch"`
	// Slice is the slice index (0 = the slice starting at the contract's Start).
	Slice uint64 `cbor:"4,keyasint" json:"slice"`
	// FromNanos and ToNanos bound the metered period, Unix nanoseconds,
	// inside the slice's bounds.
	FromNanos int64 `cbor:"5,keyasint" json:"from_ns"`
	ToNanos   int64 `cbor:"6,keyasint" json:"to_ns"`
	// Usage is what was consumed in the period.
	Usage Usage `cbor:"7,keyasint" json:"usage"`
	// Amount is the bill in pico-credits: Amount(contract.Price, Usage).
	Amount uint64 `cbor:"8,keyasint" json:"amount"`
}

// Ack is the requester's co-signature of a receipt.
type Ack struct {
	// Receipt is the CID of the acknowledged receipt entry.
	Receipt cid.Cid `cbor:"1,keyasint" json:"receipt"`
	// Amount repeats the receipt's amount (pico-credits).
	Amount uint64 `cbor:"2,keyasint" json:"amount"`
}

// Dispute is the requester's refusal of a receipt, with a reason.
type Dispute struct {
	// Receipt is the CID of the disputed receipt entry.
	Receipt cid.Cid `cbor:"1,keyasint" json:"receipt"`
	// Reason says what is wrong, in one line.
	Reason string `cbor:"2,keyasint" json:"reason"`
}

// Grant issues credits to a peer (private grids: by a founder).
type Grant struct {
	// To receives the credits.
	To peer.ID `cbor:"1,keyasint" json:"to"`
	// Amount is in pico-credits (1 credit = 10^12).
	Amount uint64 `cbor:"2,keyasint" json:"amount"`
	// Memo is free text.
	Memo string `cbor:"3,keyasint,omitempty" json:"memo,omitempty"`
}

// Checkpoint records the ledger root an author saw at a time.
type Checkpoint struct {
	// Root is the RFC 6962 root over the entries the author held.
	Root []byte `cbor:"1,keyasint" json:"root"`
	// Entries is the number of entries under Root.
	Entries uint64 `cbor:"2,keyasint" json:"entries"`
}

// End states: what ended a contract's billable span.
const (
	// EndStopped: the requester asked for the instance to be stopped.
	EndStopped = "stopped"
	// EndDestroyed: the requester asked for the instance to be destroyed.
	EndDestroyed = "destroyed"
	// EndFailed: the instance failed for good on its provider (a batch job
	// past its retries, a service past its restart budget).
	EndFailed = "failed"
	// EndDone: a batch job completed.
	EndDone = "done"
)

// MaxEndReason bounds End.Reason, in bytes.
const MaxEndReason = 1024

// End ends the billable span of a contract: no slice that begins at or
// after AtNanos may be billed (the slice containing AtNanos is the last,
// partial one). The contract's requester (it stopped or destroyed the
// instance) or its provider (the instance stopped, failed or completed
// there) writes it; the earliest End of either party counts.
type End struct {
	// Contract is the CID of the contract entry (any record of the agreement).
	Contract cid.Cid `cbor:"1,keyasint" json:"contract"`
	// AtNanos is when the span ended, Unix nanoseconds.
	AtNanos int64 `cbor:"2,keyasint" json:"at_ns"`
	// State is EndStopped, EndDestroyed, EndFailed or EndDone.
	State string `cbor:"3,keyasint" json:"state"`
	// Reason says why, in a few lines (the exit status, the last log
	// lines, the failing promise); at most MaxEndReason bytes.
	Reason string `cbor:"4,keyasint,omitempty" json:"reason,omitempty"`
}

func (e End) validate() error {
	switch e.State {
	case EndStopped, EndDestroyed, EndFailed, EndDone:
	default:
		return fmt.Errorf("%w: end state %q", ErrMalformed, e.State)
	}
	if len(e.Reason) > MaxEndReason {
		return fmt.Errorf("%w: end reason of %d bytes", ErrTooLarge, len(e.Reason))
	}
	if !e.Contract.Defined() || e.AtNanos <= 0 {
		return fmt.Errorf("%w: end fields", ErrMalformed)
	}
	return nil
}
