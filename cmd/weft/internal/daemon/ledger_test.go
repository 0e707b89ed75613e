package daemon

import (
	"context"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/weftgrid/weft/cmd/weft/internal/config"
	"github.com/weftgrid/weft/ledger"
	"github.com/weftgrid/weft/ledger/settle"
	"github.com/weftgrid/weft/scheduler"
)

func testLedgerPeer(t *testing.T) (*ledger.Signer, peer.ID) {
	t.Helper()
	priv, _, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ledger.NewSigner(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s, s.ID()
}

// [ledger] credit_limit reaches the market's bid decision through the
// ledger balance: a requester below it is declined, one at it gets a bid,
// also for a positive limit (a required deposit).
func TestCreditLimitGatesBidsOnLedgerBalance(t *testing.T) {
	ctx := context.Background()
	granter, _ := testLedgerPeer(t)
	_, rich := testLedgerPeer(t)
	_, poor := testLedgerPeer(t)
	l, err := ledger.Open(ledger.Config{Signer: granter, Granters: []peer.ID{granter.ID()}})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	// rich holds 5 credits; poor holds 4.999999 credits plus 0.5 µcr.
	if _, err := l.Append(ctx, ledger.Grant{To: rich, Amount: 5 * ledger.PicoPerCredit}); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Append(ctx, ledger.Grant{To: poor, Amount: 5*ledger.PicoPerCredit - ledger.PicoPerMicro/2}); err != nil {
		t.Fatal(err)
	}
	for _, limit := range []config.Credits{5_000_000, -1_000} {
		cfg := config.Default()
		cfg.Ledger.CreditLimit = limit
		mcfg, err := marketConfig(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if !mcfg.Policy.CheckCredit {
			t.Fatal("[market] check_credit is on by default but the policy does not check credit")
		}
		decide := func(requester peer.ID) scheduler.Decision {
			st := scheduler.NodeState{Capacity: scheduler.Resources{CPUMillis: 4000, MemoryBytes: 1 << 30}, Free: scheduler.Resources{CPUMillis: 4000, MemoryBytes: 1 << 30}, FreePartitions: 1}
			st.Balance, st.BalanceKnown = settle.Balances{L: l}.Balance(requester)
			return scheduler.Decide(&scheduler.Announcement{Requester: requester, Resources: scheduler.Resources{CPUMillis: 100}}, st, &mcfg.Policy)
		}
		if b, _ := (settle.Balances{L: l}).Balance(poor); b != 4_999_999 {
			t.Fatalf("poor's balance %d µcr, want 4999999 (rounded down)", b)
		}
		if dec := decide(rich); !dec.Bids() {
			t.Fatalf("limit %d: requester at 5 credits declined: %s", limit, dec.Text)
		}
		dec := decide(poor)
		if limit > 0 && (dec.Bids() || dec.Code != scheduler.DeclineCredit) {
			t.Fatalf("limit %d µcr: requester below it got %+v, want a credit decline", limit, dec)
		}
		if limit < 0 && !dec.Bids() {
			t.Fatalf("limit %d µcr: requester above it declined: %s", limit, dec.Text)
		}
	}
}
