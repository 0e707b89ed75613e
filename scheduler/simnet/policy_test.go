package simnet_test

import (
	"context"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/weftgrid/weft/scheduler"
	"github.com/weftgrid/weft/scheduler/simnet"
)

type vetoAll struct{ reason string }

func (v vetoAll) Veto(context.Context, *scheduler.Announcement) (bool, string, error) {
	return false, v.reason, nil
}

type balances map[peer.ID]scheduler.Amount

func (b balances) Balance(id peer.ID) (scheduler.Amount, bool) { a, ok := b[id]; return a, ok }

// The veto hook, the deny list and the credit limit of node policies are
// honoured, and each shows in the explanation.
func TestNodePolicyVetoDenyCredit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := simnet.New(simnet.Options{Seed: 3})
		defer net.Close()
		ctx := t.Context()
		req, err := net.AddNode(ctx, simnet.NodeOptions{Capacity: scheduler.Resources{CPUMillis: 1, MemoryBytes: 1, DiskBytes: 1}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := net.AddNode(ctx, simnet.NodeOptions{Veto: vetoAll{"maintenance window"}}); err != nil {
			t.Fatal(err)
		}
		denyCfg := scheduler.DefaultConfig()
		denyCfg.Policy.Deny = []peer.ID{req.ID}
		if _, err := net.AddNode(ctx, simnet.NodeOptions{Config: &denyCfg}); err != nil {
			t.Fatal(err)
		}
		creditCfg := scheduler.DefaultConfig()
		creditCfg.Policy.CheckCredit, creditCfg.Policy.CreditLimit = true, 1000
		if _, err := net.AddNode(ctx, simnet.NodeOptions{Config: &creditCfg, Balances: balances{req.ID: -5000}}); err != nil {
			t.Fatal(err)
		}

		ctx2, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if _, err := req.Market.Request(ctx2, spec("web")); err != nil {
			t.Fatal(err)
		}
		v, _ := req.Market.Wait(ctx2, "web", func(v scheduler.InstanceView) bool { ok, _ := scheduler.Reached(v); return ok })
		for _, want := range []string{"1 maintenance window", "1 requester not allowed", "1 requester over credit limit", "1 lacked cpu"} {
			if !strings.Contains(v.Reason, want) {
				t.Fatalf("explanation %q lacks %q", v.Reason, want)
			}
		}
		// Once the requester's balance is fine, the credit-checking node bids.
		ok, _ := net.AddNode(ctx, simnet.NodeOptions{Config: &creditCfg, Balances: balances{req.ID: 0}})
		got := placed(t, req.Market, spec("web2"))
		if got.Node != ok.ID.String() {
			t.Fatalf("placed on %s, want the node whose credit check passes", got.Node)
		}
	})
}
