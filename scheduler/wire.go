package scheduler

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/fxamacker/cbor/v2"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/weftgrid/weft/recipes/wire"
)

// Kind is the type of a market message.
type Kind uint8

// Message kinds. Each has its own signature domain.
const (
	KindInvalid Kind = iota
	// KindRequest: a signed request (sent by the requester to the host for
	// updates, and embedded in awards).
	KindRequest
	// KindAnnounce: an auction announcement (gossip, or direct to a bounded bidder set).
	KindAnnounce
	// KindBid: a bidder's offer (direct to the auctioneer).
	KindBid
	// KindDecline: a bidder's or awardee's refusal, with a reason code.
	KindDecline
	// KindAward: the auctioneer awards a bid (direct to the provider).
	KindAward
	// KindAccept: the provider accepts an award; award + accept = contract.
	KindAccept
	// KindContract: a contract notice (to trackers, and to fence stale hosts).
	KindContract
	// KindStatus: the host's signed status and connection parameters.
	KindStatus
	// KindWithdraw: the auctioneer's refusal of an accept that came after
	// its award timed out (the award never became a contract).
	KindWithdraw
	// KindQuery: a provider whose contract is not confirmed yet asks its
	// auctioneer (or requester) for the outcome of its accept; the body is
	// a ContractNotice of its own contract.
	KindQuery
	kindMax
)

var kindNames = [...]string{"invalid", "request", "announce", "bid", "decline", "award", "accept", "contract", "status", "withdraw", "query"}

// String returns the kind's name.
func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Domain is the signature domain of a kind: what is signed is
// Domain(kind) || 0x00 || body.
func (k Kind) Domain() string { return "weft/market/" + k.String() + "/v1" }

// Wire limits.
const (
	// MaxMessageBytes bounds an encoded envelope (and so every message).
	MaxMessageBytes = 64 << 10
	// MaxParams bounds request parameters; MaxParamBytes each key and value.
	MaxParams     = 64
	MaxParamBytes = 4 << 10
	// MaxGuardians bounds a delegation's guardian list.
	MaxGuardians = 16
	// MaxClockSkew is how far in the future a timestamp may be.
	MaxClockSkew = 30 * time.Second
	// MaxAwardAge is how old an award or accept may be when it arrives.
	MaxAwardAge = time.Minute
	// MaxWindow bounds an announcement's validity.
	MaxWindow = time.Minute
	// AuctionIDLen is the length of an auction ID.
	AuctionIDLen = 16
	// MaxAwards bounds the awards of one auction: the k-th award (from 0)
	// of an auction announced at epoch e is made at epoch e+k, so that a
	// re-award never shares an epoch with an award that timed out.
	MaxAwards = 64
	// MaxBidsPerAuctioneer bounds the auctions of one auctioneer a bidder
	// keeps answered state for (each for its window and a minute more, to
	// check the award that may follow); more announcements of it are
	// ignored until some lapse. MaxBidsForStrangers bounds those of all
	// auctioneers the bidder does not know as members, together;
	// MaxBidding those of everyone.
	MaxBidsPerAuctioneer = 4096
	// MaxGuardedPerRequester bounds the records a node keeps (and
	// stores) of the instances of one requester it is named guardian of;
	// MaxGuardedForStrangers those of all requesters it does not know as
	// members, together (keys are free: anyone can sign a contract for an
	// instance it makes up and name any node its guardian). Beyond, such
	// contracts, notices and requests are ignored.
	MaxGuardedPerRequester = 4096
	MaxGuardedForStrangers = 256
	MaxBidsForStrangers    = 1024
	MaxBidding             = 32768
)

var (
	encMode = wire.Enc
	decMode = func() cbor.DecMode {
		o := wire.DecOptions(wire.Limits{Nesting: 16, Elements: 512, MapPairs: 256})
		o.TagsMd = cbor.TagsForbidden
		return wire.MustDecMode(o)
	}()
)

func marshal(v any) []byte {
	b, err := encMode.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("scheduler: encode %T: %v", v, err)) // only plain structs are encoded
	}
	return b
}

func unmarshal(b []byte, v any) error {
	if len(b) > MaxMessageBytes {
		return fmt.Errorf("%w: %d bytes", ErrTooLarge, len(b))
	}
	if err := decMode.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return nil
}

// Signed is the envelope of every market message: a kind, the signer's peer
// ID, the deterministic CBOR body and an Ed25519 signature over
// Kind.Domain() || 0x00 || Body. Signed messages nest (an award carries the
// requester's signed request and the provider's signed bid), so each part
// stays verifiable on its own when forwarded.
type Signed struct {
	Kind   Kind    `cbor:"1,keyasint"`
	Signer peer.ID `cbor:"2,keyasint"`
	Body   []byte  `cbor:"3,keyasint"`
	Sig    []byte  `cbor:"4,keyasint"`
}

// Signer signs market messages with a node's Ed25519 key.
type Signer struct {
	id   peer.ID
	priv ed25519.PrivateKey
}

// NewSigner returns a signer for a libp2p Ed25519 private key.
func NewSigner(key crypto.PrivKey) (*Signer, error) {
	if key == nil || key.Type() != crypto.Ed25519 {
		return nil, fmt.Errorf("%w: market keys must be Ed25519", ErrInvalidRequest)
	}
	raw, err := key.Raw()
	if err != nil || len(raw) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("%w: bad Ed25519 key", ErrInvalidRequest)
	}
	id, err := peer.IDFromPrivateKey(key)
	if err != nil {
		return nil, err
	}
	return &Signer{id: id, priv: ed25519.PrivateKey(raw)}, nil
}

// ID returns the signer's peer ID.
func (s *Signer) ID() peer.ID { return s.id }

// Sign encodes body and signs it as kind.
func (s *Signer) Sign(kind Kind, body any) Signed {
	b := marshal(body)
	return Signed{Kind: kind, Signer: s.id, Body: b, Sig: wire.Sign(s.priv, kind.Domain(), b)}
}

// Encode returns the envelope's wire bytes.
func (s Signed) Encode() []byte { return marshal(s) }

// Digest is sha256 of the envelope's wire bytes.
func (s Signed) Digest() []byte {
	h := sha256.Sum256(s.Encode())
	return h[:]
}

// DecodeSigned decodes an envelope (size-bounded, strict) without verifying it.
func DecodeSigned(b []byte) (Signed, error) {
	var s Signed
	if err := unmarshal(b, &s); err != nil {
		return Signed{}, err
	}
	if err := s.check(); err != nil {
		return Signed{}, err
	}
	return s, nil
}

func (s *Signed) check() error {
	if s.Kind == KindInvalid || s.Kind >= kindMax {
		return fmt.Errorf("%w: unknown kind %d", ErrMalformed, s.Kind)
	}
	if s.Signer == "" || len(s.Sig) != ed25519.SignatureSize {
		return fmt.Errorf("%w: envelope without signer or signature", ErrMalformed)
	}
	return nil
}

// PublicKey extracts the Ed25519 public key from a peer ID (identity
// multihash of the protobuf key: a fast path without allocation).
func PublicKey(id peer.ID) (ed25519.PublicKey, error) {
	b := []byte(id)
	if len(b) == 38 && b[0] == 0x00 && b[1] == 36 && b[2] == 0x08 && b[3] == 0x01 && b[4] == 0x12 && b[5] == 0x20 {
		return ed25519.PublicKey(b[6:]), nil
	}
	pk, err := id.ExtractPublicKey()
	if err != nil || pk.Type() != crypto.Ed25519 {
		return nil, fmt.Errorf("%w: signer %s has no Ed25519 key", ErrBadSignature, id)
	}
	raw, err := pk.Raw()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadSignature, err)
	}
	return ed25519.PublicKey(raw), nil
}

var verifications atomic.Uint64

// Verifications returns how many signature checks this process has made
// (all markets together), for benchmarks of checks per placement.
func Verifications() uint64 { return verifications.Load() }

// Verify checks the envelope's structure and signature.
func (s *Signed) Verify() error {
	if err := s.check(); err != nil {
		return err
	}
	pub, err := PublicKey(s.Signer)
	if err != nil {
		return err
	}
	verifications.Add(1)
	if !wire.Verify(pub, s.Sig, s.Kind.Domain(), s.Body) {
		return fmt.Errorf("%w: %s from %s", ErrBadSignature, s.Kind, s.Signer)
	}
	return nil
}

// open verifies the envelope as kind want and decodes its body into v.
func (s *Signed) open(want Kind, v interface{ validate() error }) error {
	if s.Kind != want {
		return fmt.Errorf("%w: want %s, got %s", ErrMalformed, want, s.Kind)
	}
	if err := s.Verify(); err != nil {
		return err
	}
	if err := unmarshal(s.Body, v); err != nil {
		return err
	}
	return v.validate()
}

// Request is an instance request, signed by its requester. Requests are
// idempotent by (Requester, Name): a later Generation replaces an earlier one.
type Request struct {
	Requester peer.ID    `cbor:"1,keyasint"`
	Name      string     `cbor:"2,keyasint"`
	Instance  InstanceID `cbor:"3,keyasint"`
	// Generation orders the requests of one instance (replay protection).
	Generation uint64 `cbor:"4,keyasint"`
	// Timestamp is when it was signed (Unix nanoseconds).
	Timestamp    int64             `cbor:"5,keyasint"`
	RecipeCID    string            `cbor:"6,keyasint"`
	SoftwareType string            `cbor:"7,keyasint,omitempty"`
	Params       map[string]string `cbor:"8,keyasint,omitempty"`
	Resources    Resources         `cbor:"9,keyasint"`
	Constraints  Constraints       `cbor:"10,keyasint"`
	State        State             `cbor:"11,keyasint"`
	// Grace is how long a host may be silent before it counts as lost.
	Grace           time.Duration `cbor:"12,keyasint,omitempty"`
	Delegation      Delegation    `cbor:"13,keyasint"`
	WaitForCapacity bool          `cbor:"14,keyasint,omitempty"`
	// Batch marks a job that runs to completion; MaxRetries re-places it
	// after failures.
	Batch      bool `cbor:"15,keyasint,omitempty"`
	MaxRetries int  `cbor:"16,keyasint,omitempty"`
}

func (r *Request) validate() error {
	if err := r.Requester.Validate(); err != nil {
		return fmt.Errorf("%w: requester: %v", ErrMalformed, err)
	}
	if err := ValidateName(r.Name); err != nil {
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if r.Instance != NewInstanceID(r.Requester, r.Name) {
		return fmt.Errorf("%w: instance ID is not hash(requester, name)", ErrMalformed)
	}
	if r.Generation == 0 || r.Timestamp <= 0 {
		return fmt.Errorf("%w: missing generation or timestamp", ErrMalformed)
	}
	if _, err := cid.Decode(r.RecipeCID); err != nil {
		return fmt.Errorf("%w: recipe CID %q: %v", ErrMalformed, r.RecipeCID, err)
	}
	if len(r.SoftwareType) > MaxNameLen {
		return fmt.Errorf("%w: software type", ErrTooLarge)
	}
	if len(r.Params) > MaxParams {
		return fmt.Errorf("%w: more than %d params", ErrTooLarge, MaxParams)
	}
	for k, v := range r.Params {
		if len(k) == 0 || len(k) > MaxParamBytes || len(v) > MaxParamBytes {
			return fmt.Errorf("%w: param %.32q", ErrTooLarge, k)
		}
	}
	if !r.Resources.valid() {
		return fmt.Errorf("%w: negative resources", ErrMalformed)
	}
	if err := r.Constraints.validate(); err != nil {
		return err
	}
	if !r.State.requestable() {
		return fmt.Errorf("%w: state %s", ErrMalformed, r.State)
	}
	if r.Grace < 0 || r.MaxRetries < 0 || r.MaxRetries > 100 {
		return fmt.Errorf("%w: grace or retries out of range", ErrMalformed)
	}
	if len(r.Delegation.Guardians) > MaxGuardians {
		return fmt.Errorf("%w: more than %d guardians", ErrTooLarge, MaxGuardians)
	}
	return nil
}

// OpenRequest verifies a signed request and checks the signer is its requester.
func OpenRequest(s *Signed) (*Request, error) {
	var r Request
	if err := s.open(KindRequest, &r); err != nil {
		return nil, err
	}
	if r.Requester != s.Signer {
		return nil, fmt.Errorf("%w: request signed by %s for requester %s", ErrUnauthorized, s.Signer, r.Requester)
	}
	return &r, nil
}

// Announcement opens an auction: small, carrying only what bidders need to
// decide. Its signer is the auctioneer (the requester or a guardian).
type Announcement struct {
	AuctionID  []byte     `cbor:"1,keyasint"`
	Instance   InstanceID `cbor:"2,keyasint"`
	Requester  peer.ID    `cbor:"3,keyasint"`
	Name       string     `cbor:"4,keyasint"`
	Generation uint64     `cbor:"5,keyasint"`
	// Epoch is the epoch the resulting contract will have.
	Epoch        uint64    `cbor:"6,keyasint"`
	Resources    Resources `cbor:"7,keyasint"`
	Filter       Filter    `cbor:"8,keyasint"`
	RecipeCID    string    `cbor:"9,keyasint"`
	SoftwareType string    `cbor:"10,keyasint,omitempty"`
	// Issued and Expires bound the auction (Unix nanoseconds).
	Issued  int64 `cbor:"11,keyasint"`
	Expires int64 `cbor:"12,keyasint"`
	// Slice is the billing slice length the contract will have, in
	// nanoseconds (the auctioneer's; 0 from a node that predates it). A
	// node bids only when it is its own.
	Slice int64 `cbor:"13,keyasint,omitempty"`
}

// validSlice bounds a slice length on the wire: 0 (not stated) or
// 100 ms..24 h, like [ledger] slice.
func validSlice(ns int64) bool {
	return ns == 0 || (ns >= int64(100*time.Millisecond) && ns <= int64(24*time.Hour))
}

func (a *Announcement) validate() error {
	if len(a.AuctionID) != AuctionIDLen {
		return fmt.Errorf("%w: auction ID length", ErrMalformed)
	}
	if err := a.Requester.Validate(); err != nil {
		return fmt.Errorf("%w: requester: %v", ErrMalformed, err)
	}
	if ValidateName(a.Name) != nil || a.Instance != NewInstanceID(a.Requester, a.Name) {
		return fmt.Errorf("%w: instance ID or name", ErrMalformed)
	}
	if a.Epoch == 0 || a.Generation == 0 || !a.Resources.valid() || len(a.RecipeCID) > 256 || len(a.SoftwareType) > MaxNameLen || !validSlice(a.Slice) {
		return fmt.Errorf("%w: announcement fields", ErrMalformed)
	}
	// Issued > 0 keeps Expires-Issued from overflowing (a window from the
	// far past to the far future would pass as negative).
	if a.Issued <= 0 || a.Expires <= a.Issued || time.Duration(a.Expires-a.Issued) > MaxWindow {
		return fmt.Errorf("%w: announcement window", ErrMalformed)
	}
	return a.Filter.validate()
}

// OpenAnnouncement verifies an announcement and checks it is current at now.
func OpenAnnouncement(s *Signed, now time.Time) (*Announcement, error) {
	var a Announcement
	if err := s.open(KindAnnounce, &a); err != nil {
		return nil, err
	}
	// The window is the auctioneer's clock: tolerate MaxClockSkew both
	// ways (the window itself is only Window+AwardTimeout long). Replays
	// within the tolerance are caught by the seen set, kept longer.
	n := now.UnixNano()
	if a.Issued > n+int64(MaxClockSkew) || n > a.Expires+int64(MaxClockSkew) {
		return nil, fmt.Errorf("%w: announcement outside its window", ErrReplay)
	}
	return &a, nil
}

// Bid is a bidder's signed offer. Its signer is the bidder.
type Bid struct {
	AuctionID []byte `cbor:"1,keyasint"`
	// Prices is the bidder's price list; Total = Prices.Cost(resources).
	Prices PriceList `cbor:"2,keyasint"`
	Total  Amount    `cbor:"3,keyasint"`
	// Fit is 0..1000: the headroom the node keeps after placing (higher is better).
	Fit int `cbor:"4,keyasint"`
	// RTT is the bidder's measured round trip to the requester (0: unknown).
	RTT time.Duration `cbor:"5,keyasint,omitempty"`
	// Expires is when the offer lapses (Unix nanoseconds).
	Expires int64 `cbor:"6,keyasint"`
	// Slice is the billing slice the bidder bills in (nanoseconds; the
	// announcement's, or 0 from an older node).
	Slice int64 `cbor:"7,keyasint,omitempty"`
}

func (b *Bid) validate() error {
	if len(b.AuctionID) != AuctionIDLen || !b.Prices.valid() || b.Total < 0 || b.Fit < 0 || b.Fit > 1000 || b.RTT < 0 || b.Expires <= 0 || !validSlice(b.Slice) {
		return fmt.Errorf("%w: bid fields", ErrMalformed)
	}
	return nil
}

// OpenBid verifies a bid and checks its total against the resources asked.
func OpenBid(s *Signed, res Resources) (*Bid, error) {
	var b Bid
	if err := s.open(KindBid, &b); err != nil {
		return nil, err
	}
	if b.Prices.Cost(res) != b.Total {
		return nil, fmt.Errorf("%w: bid total %s does not match its prices (%s)", ErrMalformed, b.Total, b.Prices.Cost(res))
	}
	return &b, nil
}

// DeclineCode says why a node did not bid (or did not accept an award).
type DeclineCode uint8

// Decline codes.
const (
	DeclineNone DeclineCode = iota
	DeclineCPU
	DeclineMemory
	DeclineDisk
	DeclinePartitions
	DeclineMaxLoad
	DeclineLabel
	DeclineNotPinned
	DeclineExcluded
	DeclineMaxPrice
	DeclineMaxRTT
	DeclineRequester
	DeclineVeto
	DeclineCredit
	DeclineAwardInvalid
	DeclineNoAnswer
	DeclineOther
	// DeclineSlice: the announcement's billing slice is not this node's.
	DeclineSlice
	declineMax
)

var declineNames = [...]string{"none", "lacked cpu", "lacked memory", "lacked disk", "no free partition", "over max load",
	"label mismatch", "not the pinned node", "excluded", "over max price", "over max rtt", "requester not allowed",
	"vetoed by hook", "over credit limit", "award refused", "did not answer", "other", "different slice"}

// String returns the code's short explanation ("lacked memory").
func (c DeclineCode) String() string {
	if int(c) < len(declineNames) {
		return declineNames[c]
	}
	return fmt.Sprintf("decline(%d)", uint8(c))
}

// Decline is a node's signed refusal with a reason.
type Decline struct {
	AuctionID []byte      `cbor:"1,keyasint"`
	Code      DeclineCode `cbor:"2,keyasint"`
	// Text is one line, at most 200 bytes ("excluded by region=eu").
	Text string `cbor:"3,keyasint,omitempty"`
}

func (d *Decline) validate() error {
	if len(d.AuctionID) != AuctionIDLen || d.Code == DeclineNone || d.Code >= declineMax || len(d.Text) > 200 || bytes.ContainsAny([]byte(d.Text), "\n\r") {
		return fmt.Errorf("%w: decline fields", ErrMalformed)
	}
	return nil
}

// Reason returns the text, or the code's name when there is none.
func (d *Decline) Reason() string {
	if d.Text != "" {
		return d.Text
	}
	return d.Code.String()
}

// OpenDecline verifies a decline.
func OpenDecline(s *Signed) (*Decline, error) {
	var d Decline
	if err := s.open(KindDecline, &d); err != nil {
		return nil, err
	}
	return &d, nil
}

// Award gives an auction to one bid. Its signer is the auctioneer; the
// provider is the bid's signer.
type Award struct {
	AuctionID []byte `cbor:"1,keyasint"`
	// Request is the requester's signed request.
	Request Signed `cbor:"2,keyasint"`
	// Bid is the provider's signed winning bid (the contract's price).
	Bid    Signed `cbor:"3,keyasint"`
	Epoch  uint64 `cbor:"4,keyasint"`
	Issued int64  `cbor:"5,keyasint"`
	// AcceptBy is the end of the award's validity (Unix nanoseconds, the
	// auctioneer's clock): an accept issued more than MaxClockSkew later
	// (the provider's clock) forms no contract, and a provider refuses the
	// award then. The auctioneer's own timeout, on its own clock, decides
	// which accepts it takes; this bound keeps an old award from becoming a
	// contract much later whatever the clocks say. Zero in awards made
	// before it existed.
	AcceptBy int64 `cbor:"6,keyasint,omitempty"`
	// Slice is the contract's billing slice (nanoseconds): the
	// announcement's, which the winning bid repeated. The provider's
	// accept signs the award's digest, and so the slice; the ledger
	// contract's slice is this one. 0 in awards of older nodes (the
	// recording node's slice is used then).
	Slice int64 `cbor:"7,keyasint,omitempty"`
}

func (a *Award) validate() error {
	if len(a.AuctionID) != AuctionIDLen || a.Epoch == 0 || a.Issued <= 0 || (a.AcceptBy != 0 && a.AcceptBy < a.Issued) || !validSlice(a.Slice) {
		return fmt.Errorf("%w: award fields", ErrMalformed)
	}
	return nil
}

// AwardInfo is a verified award with its parts opened.
type AwardInfo struct {
	Award      *Award
	Auctioneer peer.ID
	Request    *Request
	Bid        *Bid
	Provider   peer.ID
}

// OpenAward verifies an award, the request and bid inside it, and that the
// auctioneer may award: it is the requester, or a guardian the request's
// delegation names (checked at the award's issue time).
func OpenAward(s *Signed) (*AwardInfo, error) {
	var a Award
	if err := s.open(KindAward, &a); err != nil {
		return nil, err
	}
	req, err := OpenRequest(&a.Request)
	if err != nil {
		return nil, fmt.Errorf("award request: %w", err)
	}
	bid, err := OpenBid(&a.Bid, req.Resources)
	if err != nil {
		return nil, fmt.Errorf("award bid: %w", err)
	}
	if !bytes.Equal(bid.AuctionID, a.AuctionID) {
		return nil, fmt.Errorf("%w: award and bid are for different auctions", ErrMalformed)
	}
	if a.Slice != bid.Slice {
		return nil, fmt.Errorf("%w: award slice %d ≠ the bid's %d", ErrMalformed, a.Slice, bid.Slice)
	}
	if s.Signer != req.Requester && !req.Delegation.Allows(s.Signer, time.Unix(0, a.Issued)) {
		return nil, fmt.Errorf("%w: %s is neither the requester nor a delegated guardian", ErrUnauthorized, s.Signer)
	}
	if s.Signer != req.Requester && req.Constraints.MaxPrice > 0 && bid.Total > req.Constraints.MaxPrice {
		// A guardian awards within the request's bounds, not in the
		// requester's place: it cannot bind the requester to more.
		return nil, fmt.Errorf("%w: a guardian's award of a bid of %s over the request's max price %s", ErrUnauthorized, bid.Total, req.Constraints.MaxPrice)
	}
	return &AwardInfo{Award: &a, Auctioneer: s.Signer, Request: req, Bid: bid, Provider: a.Bid.Signer}, nil
}

// Accept is the provider's acceptance of an award.
type Accept struct {
	AuctionID []byte `cbor:"1,keyasint"`
	// Award is the digest of the award envelope accepted.
	Award  []byte `cbor:"2,keyasint"`
	Issued int64  `cbor:"3,keyasint"`
}

func (a *Accept) validate() error {
	if len(a.AuctionID) != AuctionIDLen || len(a.Award) != sha256.Size || a.Issued <= 0 {
		return fmt.Errorf("%w: accept fields", ErrMalformed)
	}
	return nil
}

// OpenAccept verifies an accept.
func OpenAccept(s *Signed) (*Accept, error) {
	var a Accept
	if err := s.open(KindAccept, &a); err != nil {
		return nil, err
	}
	return &a, nil
}

// Withdraw is an auctioneer's signed answer to an accept (or to any sign of
// one: a status, a contract notice) for an award it gave up on because it
// timed out: that award is not a contract, and its provider must stop the
// copy it started and bill nothing for it.
type Withdraw struct {
	AuctionID []byte `cbor:"1,keyasint"`
	// Award is the digest of the award envelope withdrawn.
	Award  []byte `cbor:"2,keyasint"`
	Epoch  uint64 `cbor:"3,keyasint"`
	Issued int64  `cbor:"4,keyasint"`
}

func (w *Withdraw) validate() error {
	if len(w.AuctionID) != AuctionIDLen || len(w.Award) != sha256.Size || w.Epoch == 0 || w.Issued <= 0 {
		return fmt.Errorf("%w: withdraw fields", ErrMalformed)
	}
	return nil
}

// OpenWithdraw verifies a withdrawal.
func OpenWithdraw(s *Signed) (*Withdraw, error) {
	var w Withdraw
	if err := s.open(KindWithdraw, &w); err != nil {
		return nil, err
	}
	return &w, nil
}

// Contract is an award and its acceptance: self-authenticating, so any node
// can verify it and compare epochs (fencing). It goes into the ledger.
type Contract struct {
	Award  Signed `cbor:"1,keyasint"`
	Accept Signed `cbor:"2,keyasint"`

	info *AwardInfo
}

func (c *Contract) validate() error { return nil }

// OpenContract verifies both signatures, the award's contents and that the
// accept is by the provider and for this award.
func OpenContract(c *Contract) error {
	if c.info != nil {
		return nil
	}
	info, err := OpenAward(&c.Award)
	if err != nil {
		return err
	}
	acc, err := OpenAccept(&c.Accept)
	if err != nil {
		return err
	}
	if c.Accept.Signer != info.Provider || !bytes.Equal(acc.Award, c.Award.Digest()) || !bytes.Equal(acc.AuctionID, info.Award.AuctionID) {
		return fmt.Errorf("%w: accept does not match award", ErrUnauthorized)
	}
	if info.Award.AcceptBy != 0 && acc.Issued > info.Award.AcceptBy+int64(MaxClockSkew) {
		return fmt.Errorf("%w: accepted after the award's deadline", ErrReplay)
	}
	c.info = info
	return nil
}

// Info returns the opened award (nil until OpenContract succeeded).
func (c *Contract) Info() *AwardInfo { return c.info }

// Instance returns the contract's instance ID (after OpenContract).
func (c *Contract) Instance() InstanceID { return c.info.Request.Instance }

// Epoch returns the contract's epoch (after OpenContract).
func (c *Contract) Epoch() uint64 { return c.info.Award.Epoch }

// Provider returns the host (after OpenContract).
func (c *Contract) Provider() peer.ID { return c.info.Provider }

// Digest is sha256 of the contract's wire bytes: its identity and the
// tie-break between contracts of the same epoch.
func (c *Contract) Digest() []byte {
	h := sha256.Sum256(marshal(c))
	return h[:]
}

// Encode returns the contract's wire bytes.
func (c *Contract) Encode() []byte { return marshal(c) }

// DecodeContract decodes and verifies a contract.
func DecodeContract(b []byte) (*Contract, error) {
	var c Contract
	if err := unmarshal(b, &c); err != nil {
		return nil, err
	}
	if err := OpenContract(&c); err != nil {
		return nil, err
	}
	return &c, nil
}

// ContractNotice carries a contract to trackers and to fenced hosts.
type ContractNotice struct {
	Contract Contract `cbor:"1,keyasint"`
}

func (n *ContractNotice) validate() error { return nil }

// OpenContractNotice verifies a notice and the contract inside it.
func OpenContractNotice(s *Signed) (*Contract, error) { return openContractNotice(s, OpenContract) }

func openContractNotice(s *Signed, openContract func(*Contract) error) (*Contract, error) {
	return openNotice(s, KindContract, openContract)
}

// OpenQuery verifies an outcome query: a notice of the signer's own
// contract, signed by its provider.
func OpenQuery(s *Signed) (*Contract, error) { return openQuery(s, OpenContract) }

func openQuery(s *Signed, openContract func(*Contract) error) (*Contract, error) {
	c, err := openNotice(s, KindQuery, openContract)
	if err != nil {
		return nil, err
	}
	if c.Provider() != s.Signer {
		return nil, fmt.Errorf("%w: an outcome query from %s about %s's contract", ErrUnauthorized, s.Signer, c.Provider())
	}
	return c, nil
}

func openNotice(s *Signed, kind Kind, openContract func(*Contract) error) (*Contract, error) {
	var n ContractNotice
	if err := s.open(kind, &n); err != nil {
		return nil, err
	}
	if err := openContract(&n.Contract); err != nil {
		return nil, err
	}
	return &n.Contract, nil
}

// Status is a host's signed report on an instance: its state and connection
// parameters, under the contract that placed it there.
type Status struct {
	Contract   Contract          `cbor:"1,keyasint"`
	Generation uint64            `cbor:"2,keyasint"`
	State      State             `cbor:"3,keyasint"`
	Connection map[string]string `cbor:"4,keyasint,omitempty"`
	Reason     string            `cbor:"5,keyasint,omitempty"`
	// Result is a batch job's result CID.
	Result string `cbor:"6,keyasint,omitempty"`
	Issued int64  `cbor:"7,keyasint"`
	// Applied is the generation of the last request the host has finished
	// applying (0 while the first apply runs). Generation says which
	// request the host holds; Applied says whether State and Connection
	// already reflect it, so a requester waiting on an in-place update can
	// tell the old status from the new one.
	Applied uint64 `cbor:"8,keyasint,omitempty"`
	// Health is HealthFailing when the host judges the instance failing;
	// otherwise it is not sent (HealthUnknown on the wire), and the
	// requester derives ok (started) or unknown from State (see
	// InstanceView.Health), so a healthy instance's status is what an older
	// requester accepts.
	Health Health `cbor:"9,keyasint,omitempty"`
	// Restarts counts the process restarts of the current run.
	Restarts uint32 `cbor:"10,keyasint,omitempty"`
	// LastExit describes the last process exit ("exit status 1").
	LastExit string `cbor:"11,keyasint,omitempty"`
	// Draining is set by a host being drained (weft node drain): it asks
	// the instance's trackers to re-place it elsewhere, as for a lost host.
	Draining bool `cbor:"12,keyasint,omitempty"`
}

// Health is an instance's health as its host judges it.
type Health uint8

// Health values. Health, Restarts and LastExit are new in the status
// message (keys 9-11): an older requester refuses a status that carries
// them (unknown field), so a host sends them only when they say something
// (a failing instance, restarts): a healthy instance's status is unchanged.
const (
	// HealthUnknown: nothing to judge (not running, or an older host).
	HealthUnknown Health = iota
	// HealthOK: running, every anomaly promise passing.
	HealthOK
	// HealthFailing: a promise failing, a process crash-looping, or failed.
	HealthFailing
)

var healthNames = [...]string{"unknown", "ok", "failing"}

// String returns the health's name (JSON: unknown, ok, failing).
func (h Health) String() string {
	if int(h) < len(healthNames) {
		return healthNames[h]
	}
	return fmt.Sprintf("health(%d)", uint8(h))
}

// MarshalText encodes the health by name.
func (h Health) MarshalText() ([]byte, error) { return []byte(h.String()), nil }

// UnmarshalText decodes a health name.
func (h *Health) UnmarshalText(b []byte) error {
	for i, n := range healthNames {
		if n == string(b) {
			*h = Health(i)
			return nil
		}
	}
	return fmt.Errorf("%w: unknown health %q", ErrMalformed, b)
}

func (s *Status) validate() error {
	if len(s.Connection) > MaxParams || len(s.Reason) > 1024 || len(s.Result) > 256 || s.Issued <= 0 || s.State > StateDone || s.Applied > s.Generation ||
		(s.Health != HealthUnknown && s.Health != HealthFailing) || len(s.LastExit) > 1024 {
		return fmt.Errorf("%w: status fields", ErrMalformed)
	}
	for k, v := range s.Connection {
		if len(k) > MaxParamBytes || len(v) > MaxParamBytes {
			return fmt.Errorf("%w: connection parameter", ErrTooLarge)
		}
	}
	return nil
}

// OpenStatus verifies a status, its contract, and that its signer is the
// contract's provider.
func OpenStatus(s *Signed) (*Status, error) { return openStatus(s, OpenContract) }

func openStatus(s *Signed, openContract func(*Contract) error) (*Status, error) {
	var st Status
	if err := s.open(KindStatus, &st); err != nil {
		return nil, err
	}
	if err := openContract(&st.Contract); err != nil {
		return nil, err
	}
	if st.Contract.Provider() != s.Signer {
		return nil, fmt.Errorf("%w: status by %s for a contract of %s", ErrUnauthorized, s.Signer, st.Contract.Provider())
	}
	return &st, nil
}
