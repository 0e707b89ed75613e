package scheduler

import (
	"bytes"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

const testCID = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"

type seededReader struct{ r *rand.ChaCha8 }

func (s seededReader) Read(p []byte) (int, error) { return s.r.Read(p) }

func testSigner(t testing.TB, seed byte) *Signer {
	t.Helper()
	var s [32]byte
	s[0] = seed
	k, _, err := crypto.GenerateEd25519Key(seededReader{rand.NewChaCha8(s)})
	if err != nil {
		t.Fatal(err)
	}
	sg, err := NewSigner(k)
	if err != nil {
		t.Fatal(err)
	}
	return sg
}

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func testRequest(requester peer.ID, name string, guardians ...peer.ID) *Request {
	return &Request{Requester: requester, Name: name, Instance: NewInstanceID(requester, name), Generation: 1,
		Timestamp: t0.UnixNano(), RecipeCID: testCID, Params: map[string]string{"port": "8080"},
		Resources: Resources{CPUMillis: 500, MemoryBytes: 1 << 28}, State: StateStarted,
		Delegation: Delegation{Guardians: guardians}}
}

func testAnnouncement(req *Request, epoch uint64) *Announcement {
	return &Announcement{AuctionID: bytes.Repeat([]byte{byte(epoch)}, AuctionIDLen), Instance: req.Instance, Requester: req.Requester,
		Name: req.Name, Generation: req.Generation, Epoch: epoch, Resources: req.Resources, RecipeCID: req.RecipeCID,
		Issued: t0.UnixNano(), Expires: t0.Add(5 * time.Second).UnixNano()}
}

// contractFor builds a valid contract: auctioneer awards provider's bid.
func contractFor(t testing.TB, auctioneer, requester, provider *Signer, req *Request, epoch uint64) *Contract {
	t.Helper()
	reqEnv := requester.Sign(KindRequest, req)
	ann := testAnnouncement(req, epoch)
	prices := PriceList{PerCoreHour: 1000}
	bid := provider.Sign(KindBid, &Bid{AuctionID: ann.AuctionID, Prices: prices, Total: prices.Cost(req.Resources), Fit: 500,
		Expires: t0.Add(10 * time.Second).UnixNano()})
	aw := auctioneer.Sign(KindAward, &Award{AuctionID: ann.AuctionID, Request: reqEnv, Bid: bid, Epoch: epoch, Issued: t0.UnixNano()})
	acc := provider.Sign(KindAccept, &Accept{AuctionID: ann.AuctionID, Award: aw.Digest(), Issued: t0.UnixNano()})
	c := &Contract{Award: aw, Accept: acc}
	if err := OpenContract(c); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestSignedRoundTripAndDomainSeparation(t *testing.T) {
	s := testSigner(t, 1)
	req := testRequest(s.ID(), "web")
	env := s.Sign(KindRequest, req)
	dec, err := DecodeSigned(env.Encode())
	if err != nil {
		t.Fatal(err)
	}
	got, err := OpenRequest(&dec)
	if err != nil || got.Name != "web" || got.Params["port"] != "8080" {
		t.Fatalf("open: %v %+v", err, got)
	}
	// The same body and signature presented as another kind must fail.
	other := dec
	other.Kind = KindStatus
	if err := other.Verify(); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("cross-kind replay verified: %v", err)
	}
}

func TestForgedRequestsRejected(t *testing.T) {
	alice, mallory := testSigner(t, 1), testSigner(t, 2)
	req := testRequest(alice.ID(), "web")

	// Signed by someone else than the requester it names.
	forged := mallory.Sign(KindRequest, req)
	if _, err := OpenRequest(&forged); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("request signed by another peer: %v", err)
	}
	// Body altered after signing.
	env := alice.Sign(KindRequest, req)
	tampered := env
	tampered.Body = bytes.Clone(env.Body)
	tampered.Body[len(tampered.Body)-1] ^= 1
	if _, err := OpenRequest(&tampered); err == nil {
		t.Fatal("tampered request opened")
	}
	// Signer swapped for another key.
	swapped := env
	swapped.Signer = mallory.ID()
	if _, err := OpenRequest(&swapped); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("swapped signer: %v", err)
	}
	// Instance ID not derived from (requester, name).
	bad := *req
	bad.Instance = NewInstanceID(alice.ID(), "other")
	env = alice.Sign(KindRequest, &bad)
	if _, err := OpenRequest(&env); !errors.Is(err, ErrMalformed) {
		t.Fatalf("bad instance ID: %v", err)
	}
}

func TestMalformedAndOversizedRejected(t *testing.T) {
	s := testSigner(t, 1)
	for name, data := range map[string][]byte{
		"empty":      nil,
		"garbage":    []byte("not cbor at all"),
		"truncated":  s.Sign(KindBid, &Bid{}).Encode()[:20],
		"oversized":  append([]byte{0x5a, 0x00, 0x10, 0x00, 0x00}, make([]byte, 1<<20)...),
		"indefinite": {0xbf, 0x01, 0x01, 0xff},
	} {
		if _, err := DecodeSigned(data); err == nil {
			t.Errorf("%s: decoded", name)
		}
	}
	big := testRequest(s.ID(), "web")
	big.Params = map[string]string{}
	for i := range MaxParams + 1 {
		big.Params[strings.Repeat("k", i+1)] = "v"
	}
	env := s.Sign(KindRequest, big)
	if _, err := OpenRequest(&env); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("too many params: %v", err)
	}
	huge := testRequest(s.ID(), "web")
	huge.Params = map[string]string{"blob": strings.Repeat("x", MaxMessageBytes)}
	env = s.Sign(KindRequest, huge)
	if _, err := DecodeSigned(env.Encode()); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("oversized envelope: %v", err)
	}
	// Unknown fields are refused (strict decoding).
	type extended struct {
		Request
		Extra int `cbor:"99,keyasint"`
	}
	ext := s.Sign(KindRequest, &extended{Request: *testRequest(s.ID(), "web"), Extra: 1})
	if _, err := OpenRequest(&ext); !errors.Is(err, ErrMalformed) {
		t.Fatalf("unknown field: %v", err)
	}
}

func TestAwardsAuthorisedAndForgedRejected(t *testing.T) {
	alice, bob, guard, mallory := testSigner(t, 1), testSigner(t, 2), testSigner(t, 3), testSigner(t, 4)
	req := testRequest(alice.ID(), "web", guard.ID())
	// By the requester and by a delegated guardian: fine.
	contractFor(t, alice, alice, bob, req, 1)
	contractFor(t, guard, alice, bob, req, 2)
	// By someone else: unauthorized.
	reqEnv := alice.Sign(KindRequest, req)
	ann := testAnnouncement(req, 3)
	bid := bob.Sign(KindBid, &Bid{AuctionID: ann.AuctionID, Total: 0, Fit: 1, Expires: t0.Add(time.Second).UnixNano()})
	aw := mallory.Sign(KindAward, &Award{AuctionID: ann.AuctionID, Request: reqEnv, Bid: bid, Epoch: 3, Issued: t0.UnixNano()})
	if _, err := OpenAward(&aw); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("award by a stranger: %v", err)
	}
	// An expired delegation no longer authorises the guardian.
	req2 := testRequest(alice.ID(), "web", guard.ID())
	req2.Delegation.Expires = t0.Add(-time.Second).UnixNano()
	aw2 := guard.Sign(KindAward, &Award{AuctionID: ann.AuctionID, Request: alice.Sign(KindRequest, req2), Bid: bid, Epoch: 3, Issued: t0.UnixNano()})
	if _, err := OpenAward(&aw2); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("award under an expired delegation: %v", err)
	}
	// A bid whose total does not match its prices.
	lying := bob.Sign(KindBid, &Bid{AuctionID: ann.AuctionID, Prices: PriceList{PerCoreHour: 1000}, Total: 1, Fit: 1, Expires: 1})
	aw3 := alice.Sign(KindAward, &Award{AuctionID: ann.AuctionID, Request: reqEnv, Bid: lying, Epoch: 3, Issued: t0.UnixNano()})
	if _, err := OpenAward(&aw3); !errors.Is(err, ErrMalformed) {
		t.Fatalf("award with a lying bid: %v", err)
	}
	// An accept by someone other than the provider.
	c := contractFor(t, alice, alice, bob, req, 4)
	c2 := &Contract{Award: c.Award, Accept: mallory.Sign(KindAccept, &Accept{AuctionID: ann.AuctionID, Award: c.Award.Digest(), Issued: 1})}
	if err := OpenContract(c2); err == nil {
		t.Fatal("contract accepted by a stranger opened")
	}
	// A contract round-trips through its encoding.
	back, err := DecodeContract(c.Encode())
	if err != nil || back.Epoch() != 4 || back.Provider() != bob.ID() || !bytes.Equal(back.Digest(), c.Digest()) {
		t.Fatalf("decode contract: %v", err)
	}
}

func TestAnnouncementWindow(t *testing.T) {
	s := testSigner(t, 1)
	ann := testAnnouncement(testRequest(s.ID(), "web"), 1)
	env := s.Sign(KindAnnounce, ann)
	if _, err := OpenAnnouncement(&env, t0.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenAnnouncement(&env, t0.Add(time.Minute)); !errors.Is(err, ErrReplay) {
		t.Fatalf("replayed after expiry: %v", err)
	}
	if _, err := OpenAnnouncement(&env, t0.Add(-time.Hour)); !errors.Is(err, ErrReplay) {
		t.Fatalf("from the future: %v", err)
	}
	ann.Expires = ann.Issued + int64(2*MaxWindow)
	env = s.Sign(KindAnnounce, ann)
	if _, err := OpenAnnouncement(&env, t0); !errors.Is(err, ErrMalformed) {
		t.Fatalf("window too long: %v", err)
	}
}

func TestPublicKeyFastPathMatchesLibp2p(t *testing.T) {
	s := testSigner(t, 9)
	fast, err := PublicKey(s.ID())
	if err != nil {
		t.Fatal(err)
	}
	pk, _ := s.ID().ExtractPublicKey()
	raw, _ := pk.Raw()
	if !bytes.Equal(fast, raw) {
		t.Fatal("fast path key differs")
	}
}

func TestPriceCost(t *testing.T) {
	p := PriceList{PerCoreHour: 1000, PerGiBHour: 300, PerDiskGiBHour: 1, PerInstanceHour: 7}
	got := p.Cost(Resources{CPUMillis: 1500, MemoryBytes: 2 << 30, DiskBytes: 1 << 29})
	if want := Amount(1500 + 600 + 1 + 7); got != want {
		t.Fatalf("cost %d, want %d", got, want)
	}
	if c := (PriceList{PerCoreHour: 1 << 62}).Cost(Resources{CPUMillis: 1 << 62}); c <= 0 {
		t.Fatalf("overflow gave %d", c)
	}
	if s := Amount(1500).String(); s != "0.001500" {
		t.Fatalf("amount string %q", s)
	}
}

// An instance view always carries state, health, reason, restarts and
// last_exit, also when they do not apply (`weft instance show --json`).
func TestInstanceViewAlwaysHasHealthFields(t *testing.T) {
	b, err := json.Marshal(InstanceView{})
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]any{"state": "pending", "health": "unknown", "reason": "", "restarts": float64(0), "last_exit": nil} {
		if v, ok := m[k]; !ok || v != want {
			t.Errorf("%s: %v (present %v), want %v", k, v, ok, want)
		}
	}
}

// An accept issued after its award's deadline opens within the clock-skew
// bound (the provider's clock may run ahead of the auctioneer's) and not
// beyond it: a very old award never becomes a contract.
func TestAcceptByToleratesSkewOnly(t *testing.T) {
	alice, bob := testSigner(t, 1), testSigner(t, 2)
	req := testRequest(alice.ID(), "web")
	ann := testAnnouncement(req, 1)
	prices := PriceList{PerCoreHour: 1000}
	bid := bob.Sign(KindBid, &Bid{AuctionID: ann.AuctionID, Prices: prices, Total: prices.Cost(req.Resources), Fit: 500,
		Expires: t0.Add(10 * time.Second).UnixNano()})
	by := t0.Add(2 * time.Second)
	aw := alice.Sign(KindAward, &Award{AuctionID: ann.AuctionID, Request: alice.Sign(KindRequest, req), Bid: bid, Epoch: 1,
		Issued: t0.UnixNano(), AcceptBy: by.UnixNano()})
	for _, tc := range []struct {
		issued time.Time
		ok     bool
	}{{by, true}, {by.Add(MaxClockSkew / 3), true}, {by.Add(MaxClockSkew + time.Second), false}} {
		acc := bob.Sign(KindAccept, &Accept{AuctionID: ann.AuctionID, Award: aw.Digest(), Issued: tc.issued.UnixNano()})
		err := OpenContract(&Contract{Award: aw, Accept: acc})
		if (err == nil) != tc.ok || (err != nil && !errors.Is(err, ErrReplay)) {
			t.Errorf("accept issued %s after the deadline: %v", tc.issued.Sub(by), err)
		}
	}
}
