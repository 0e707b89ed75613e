package simnet_test

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/weftgrid/weft/scheduler"
)

// A service whose start failed on its host is fixed by an in-place update
// (new params): waiting for the update must not return the failure the
// host reported for the earlier request.
func TestWaitAfterFixingAFailedInstance(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, nodes := grid(t, 3, nil)
		req := nodes[0].Market
		for _, n := range nodes {
			n.Runner.SetFail("port taken")
		}
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		s := spec("web")
		if _, err := req.Request(ctx, s); err != nil {
			t.Fatal(err)
		}
		v, _ := req.Wait(ctx, "web", func(v scheduler.InstanceView) bool { ok, _ := scheduler.Reached(v); return ok })
		if v.State != scheduler.StateFailed || v.Node == "" {
			t.Fatalf("first start: %s on %q, want failed on its host", v.State, v.Node)
		}
		for _, n := range nodes {
			n.Runner.SetFail("")
		}
		s.Params = map[string]string{"port": "8081"}
		if _, err := req.Request(ctx, s); err != nil {
			t.Fatal(err)
		}
		v, err := req.Wait(ctx, "web", func(v scheduler.InstanceView) bool { ok, _ := scheduler.Reached(v); return ok })
		if err != nil {
			t.Fatal(err)
		}
		if _, err := scheduler.Reached(v); err != nil || v.State != scheduler.StateStarted {
			t.Fatalf("after the fix: %s (%v), want started", v.State, err)
		}
	})
}
