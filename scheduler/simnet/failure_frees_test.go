package simnet_test

import (
	"context"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/weftgrid/weft/scheduler"
	"github.com/weftgrid/weft/scheduler/simnet"
)

// A job that fails for good frees its host's only partition at once: the
// requester's record shows failed with the host's reason, and a request
// made right after, waiting for capacity, is placed there.
func TestFailedJobFreesItsPartition(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, nodes := grid(t, 2, func(i int) simnet.NodeOptions {
			if i == 1 {
				return simnet.NodeOptions{Partitions: 1}
			}
			return simnet.NodeOptions{}
		})
		host := nodes[1]
		host.Runner.SetFail("process main: exit status 2")
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		m := nodes[0].Market
		job := spec("job")
		job.Batch, job.Constraints.Node = true, host.ID
		if _, err := m.Request(ctx, job); err != nil {
			t.Fatal(err)
		}
		v, err := m.Wait(ctx, "job", func(v scheduler.InstanceView) bool { return v.State == scheduler.StateFailed })
		if err != nil || !strings.Contains(v.Reason, "exit status 2") || v.Health != scheduler.HealthFailing {
			t.Fatalf("job: %v %+v", err, v)
		}
		host.Runner.SetFail("")
		next := spec("next", "wait_for_capacity=true")
		next.Constraints.Node = host.ID
		if _, err := m.Request(ctx, next); err != nil {
			t.Fatal(err)
		}
		v, err = m.Wait(ctx, "next", func(v scheduler.InstanceView) bool { return v.State == scheduler.StateStarted })
		if err != nil || v.Node != host.ID.String() {
			t.Fatalf("next: %v %+v", err, v)
		}
		// The failed job still shows its failure.
		if v, err := m.Instance("job"); err != nil || v.State != scheduler.StateFailed {
			t.Fatalf("job after: %v %+v", err, v)
		}
	})
}
