package scheduler

import (
	"testing"
	"time"

	"github.com/weftgrid/weft/recipes/wire"
)

// fuzzSeeds are valid envelopes of every kind.
func fuzzSeeds(t testing.TB) [][]byte {
	alice, bob := testSigner(t, 1), testSigner(t, 2)
	req := testRequest(alice.ID(), "web", bob.ID())
	c := contractFor(t, alice, alice, bob, req, 1)
	ann := testAnnouncement(req, 1)
	sliced := *ann
	sliced.Slice = int64(time.Second)
	return [][]byte{
		alice.Sign(KindAnnounce, &sliced).Encode(),
		bob.Sign(KindBid, &Bid{AuctionID: ann.AuctionID, Fit: 1, Expires: 1, Slice: int64(time.Second)}).Encode(),
		alice.Sign(KindAward, &Award{AuctionID: ann.AuctionID, Request: alice.Sign(KindRequest, req), Bid: bob.Sign(KindBid, &Bid{AuctionID: ann.AuctionID, Fit: 1, Expires: 1, Slice: int64(time.Minute)}),
			Epoch: 1, Issued: 1, Slice: int64(time.Minute)}).Encode(),
		bob.Sign(KindDecline, &Decline{AuctionID: ann.AuctionID, Code: DeclineSlice, Text: "slice 1s differs from this node's 1m0s"}).Encode(),
		alice.Sign(KindRequest, req).Encode(),
		alice.Sign(KindAnnounce, ann).Encode(),
		bob.Sign(KindBid, &Bid{AuctionID: ann.AuctionID, Fit: 1, Expires: 1}).Encode(),
		bob.Sign(KindDecline, &Decline{AuctionID: ann.AuctionID, Code: DeclineMemory, Text: "lacked memory"}).Encode(),
		c.Award.Encode(), c.Accept.Encode(),
		alice.Sign(KindContract, &ContractNotice{Contract: *c}).Encode(),
		bob.Sign(KindStatus, &Status{Contract: *c, Generation: 1, State: StateStarted, Connection: map[string]string{"url": "x"}, Issued: 1}).Encode(),
		bob.Sign(KindStatus, &Status{Contract: *c, Generation: 1, State: StateFailed, Reason: "crash loop", Issued: 1, Health: HealthFailing, Restarts: 12, LastExit: "main: exit status 3"}).Encode(),
		bob.Sign(KindQuery, &ContractNotice{Contract: *c}).Encode(),
		alice.Sign(KindWithdraw, &Withdraw{AuctionID: ann.AuctionID, Award: c.Award.Digest(), Epoch: 1, Issued: 1}).Encode(),
	}
}

// FuzzDecodeSigned feeds arbitrary bytes to the envelope decoder and every
// typed opener: nothing may panic, and what opens must re-encode.
func FuzzDecodeSigned(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		env, err := DecodeSigned(data)
		if err != nil {
			return
		}
		_ = env.Encode()
		now := t0.Add(time.Second)
		_, _ = OpenRequest(&env)
		_, _ = OpenAnnouncement(&env, now)
		_, _ = OpenBid(&env, Resources{CPUMillis: 500})
		_, _ = OpenDecline(&env)
		_, _ = OpenAward(&env)
		_, _ = OpenAccept(&env)
		_, _ = OpenContractNotice(&env)
		_, _ = OpenStatus(&env)
		_, _ = OpenWithdraw(&env)
		_, _ = OpenQuery(&env)
	})
}

// FuzzMessageBodies signs arbitrary bodies with a valid key, so the fuzzer
// gets past the signature check and exercises every body decoder and validator.
func FuzzMessageBodies(f *testing.F) {
	s := testSigner(f, 1)
	for _, seed := range fuzzSeeds(f) {
		env, _ := DecodeSigned(seed)
		f.Add(uint8(env.Kind), env.Body)
	}
	f.Fuzz(func(t *testing.T, kind uint8, body []byte) {
		k := Kind(kind%uint8(kindMax-1)) + 1
		env := s.Sign(k, struct{}{})
		env.Body = body
		env.Sig = nil
		env = resign(s, env)
		switch k {
		case KindRequest:
			if r, err := OpenRequest(&env); err == nil && r.Instance != NewInstanceID(r.Requester, r.Name) {
				t.Fatal("opened a request with a bad instance ID")
			}
		case KindAnnounce:
			_, _ = OpenAnnouncement(&env, t0)
		case KindBid:
			_, _ = OpenBid(&env, Resources{})
		case KindDecline:
			_, _ = OpenDecline(&env)
		case KindAward:
			_, _ = OpenAward(&env)
		case KindAccept:
			_, _ = OpenAccept(&env)
		case KindContract:
			if c, err := OpenContractNotice(&env); err == nil {
				_ = c.Epoch()
				if _, err := DecodeContract(c.Encode()); err != nil {
					t.Fatalf("opened contract does not decode again: %v", err)
				}
			}
		case KindStatus:
			_, _ = OpenStatus(&env)
		case KindWithdraw:
			_, _ = OpenWithdraw(&env)
		case KindQuery:
			_, _ = OpenQuery(&env)
		}
	})
}

func resign(s *Signer, env Signed) Signed {
	return Signed{Kind: env.Kind, Signer: s.id, Body: env.Body, Sig: signRaw(s, env.Kind, env.Body)}
}

// FuzzDecodeContract fuzzes the contract decoder (used by the ledger).
func FuzzDecodeContract(f *testing.F) {
	alice, bob := testSigner(f, 1), testSigner(f, 2)
	f.Add(contractFor(f, alice, alice, bob, testRequest(alice.ID(), "web"), 1).Encode())
	f.Add([]byte{0xa0})
	f.Fuzz(func(t *testing.T, data []byte) {
		if c, err := DecodeContract(data); err == nil && c.Provider() == "" {
			t.Fatal("contract without provider opened")
		}
	})
}

// FuzzApplySLA fuzzes the --sla parser.
func FuzzApplySLA(f *testing.F) {
	for _, s := range []string{"region=eu", "max_price=0.25", "max_rtt=20ms", "label.x=y", "colour=blue", "node=12D3KooWKs32iEsCymw16xMcvNiKuUdbAbAdVBs3MBFU8nAmnqni", "=", "max_price=.5"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, kv string) {
		var spec RequestSpec
		if err := ApplySLA(&spec, []string{kv}); err == nil {
			if err := spec.Constraints.validate(); err != nil {
				t.Fatalf("accepted %q but constraints invalid: %v", kv, err)
			}
		}
	})
}

func signRaw(s *Signer, kind Kind, body []byte) []byte {
	return wire.Sign(s.priv, kind.Domain(), body)
}

// FuzzStoredEntries fuzzes the decoders of the market's persisted records.
func FuzzStoredEntries(f *testing.F) {
	alice, bob := testSigner(f, 1), testSigner(f, 2)
	req := testRequest(alice.ID(), "web")
	c := contractFor(f, alice, alice, bob, req, 1)
	f.Add(marshal(&savedRecord{Request: c.Award, Contract: c, Mine: true}))
	f.Add(marshal(&savedRecord{Request: alice.Sign(KindRequest, req), Contract: c, Mine: true, MaxEpoch: 1}))
	f.Add(marshal(&savedHosted{Contract: *c, Request: alice.Sign(KindRequest, req)}))
	f.Fuzz(func(t *testing.T, data []byte) {
		if rec, err := decodeRecord(req.Instance, data, alice.ID()); err == nil && rec.req.Instance != req.Instance {
			t.Fatal("record of another instance restored")
		}
		if h, err := decodeHosted(req.Instance, data, bob.ID()); err == nil && h.contract.Provider() != bob.ID() {
			t.Fatal("copy of another provider restored")
		}
	})
}
