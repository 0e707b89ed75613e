package simnet_test

import (
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/weftgrid/weft/scheduler"
)

// The requester judges a slice from what the host reported during it, not
// from the current view: a slice in which the host reported the instance
// failing stays unhealthy after it recovers; slices before and after are
// healthy.
func TestSliceHealthFromTheStatusHistory(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, nodes := grid(t, 2, nil)
		s := spec("web")
		s.Constraints.Node = nodes[1].ID
		v := placed(t, nodes[0].Market, s)
		m := nodes[0].Market
		healthyAt := time.Now()
		time.Sleep(5 * time.Second)
		failFrom := time.Now()
		nodes[1].Runner.SetHealth(v.InstanceID, scheduler.HealthFailing, "web: exit status 1")
		waitFor(t, "failing view", 10*time.Second, func() bool {
			w, _ := m.Instance("web")
			return w.Health == scheduler.HealthFailing
		})
		time.Sleep(5 * time.Second)
		nodes[1].Runner.SetHealth(v.InstanceID, scheduler.HealthUnknown, "")
		waitFor(t, "healthy view", 10*time.Second, func() bool {
			w, _ := m.Instance("web")
			return w.Health == scheduler.HealthOK
		})
		failTo := time.Now()
		time.Sleep(5 * time.Second)
		if ok, known, why := m.SliceHealth(v.InstanceID, v.Epoch, healthyAt, healthyAt.Add(time.Second)); !ok || !known {
			t.Fatalf("slice before the failure: %v %v %q", ok, known, why)
		}
		ok, known, why := m.SliceHealth(v.InstanceID, v.Epoch, failFrom, failTo)
		if ok || !known || !strings.Contains(why, "failing") || !strings.Contains(why, "exit status 1") {
			t.Fatalf("slice of the failure: %v %v %q", ok, known, why)
		}
		if ok, known, why := m.SliceHealth(v.InstanceID, v.Epoch, time.Now().Add(-2*time.Second), time.Now()); !ok || !known {
			t.Fatalf("slice after the recovery: %v %v %q", ok, known, why)
		}
		if _, known, _ := m.SliceHealth(v.InstanceID, v.Epoch+1, failFrom, failTo); known {
			t.Fatal("a verdict for an epoch the host never reported")
		}
	})
}
