package simnet_test

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/weftgrid/weft/scheduler"
	"github.com/weftgrid/weft/scheduler/simnet"
)

// Timestamps may be at most MaxClockSkew in the future (docs/protocols.md),
// but a status's Issued was not checked: one status stamped far ahead (a
// host whose clock jumped) made the requester drop every later status of
// that host as older, so its view froze ("started" while the host reports
// "failed": no batch retry, --wait never ends).
func TestStatusFromTheFutureDoesNotFreezeTheView(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net, nodes := grid(t, 1, nil)
		req := nodes[0].Market
		_, err := net.AddRogue(t.Context(), func(r *simnet.Rogue, in scheduler.Inbound) {
			if c, info := bidAndAccept(r, in); c != nil {
				gen := info.Request.Generation
				ahead := r.Signer.Sign(scheduler.KindStatus, &scheduler.Status{Contract: *c, Generation: gen, Applied: gen,
					State: scheduler.StateStarted, Issued: time.Now().Add(24 * time.Hour).UnixNano()})
				r.Send(info.Request.Requester, ahead.Encode())
				go func() {
					time.Sleep(time.Second)
					failed := r.Signer.Sign(scheduler.KindStatus, &scheduler.Status{Contract: *c, Generation: gen, Applied: gen,
						State: scheduler.StateFailed, Reason: "crashed", Issued: time.Now().UnixNano()})
					r.Send(info.Request.Requester, failed.Encode())
				}()
			}
		})
		if err != nil {
			t.Fatal(err)
		}
		rogue := net.Nodes()[1].ID
		if _, err := req.Request(t.Context(), spec("job", "node="+rogue.String())); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Second)
		synctest.Wait()
		v, err := req.Instance("job")
		if err != nil {
			t.Fatal(err)
		}
		if v.Node != rogue.String() || v.State != scheduler.StateFailed {
			t.Fatalf("host %s reported failed; requester's view: node %s, state %s", rogue, v.Node, v.State)
		}
	})
}
