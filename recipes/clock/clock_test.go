package clock

import (
	"testing"
	"time"
)

func fired(c <-chan time.Time) (time.Time, bool) {
	select {
	case t := <-c:
		return t, true
	default:
		return time.Time{}, false
	}
}

func TestFakeTimer(t *testing.T) {
	t0 := time.Unix(1000, 0)
	f := NewFake(t0)
	tm := f.NewTimer(time.Second)
	if _, ok := fired(tm.C()); ok {
		t.Fatal("fired before its time")
	}
	f.Advance(999 * time.Millisecond)
	if _, ok := fired(tm.C()); ok {
		t.Fatal("fired 1 ms early")
	}
	f.Advance(time.Millisecond)
	if at, ok := fired(tm.C()); !ok || !at.Equal(t0.Add(time.Second)) {
		t.Fatalf("fired %v %v, want at %v", ok, at, t0.Add(time.Second))
	}
	if tm.Stop() {
		t.Error("Stop of a fired timer reported it active")
	}
	if f.Waiters() != 0 {
		t.Errorf("%d waiters after the timer fired", f.Waiters())
	}
	if tm.Reset(time.Second) {
		t.Error("Reset of a fired timer reported it active")
	}
	if !tm.Stop() {
		t.Error("Stop of an armed timer reported it inactive")
	}
	f.Advance(time.Hour)
	if _, ok := fired(tm.C()); ok {
		t.Error("a stopped timer fired")
	}
	if _, ok := fired(f.After(0)); !ok {
		t.Error("After(0) did not fire at once")
	}
	if !f.Now().Equal(t0.Add(time.Hour + time.Second)) {
		t.Errorf("Now %v", f.Now())
	}
}

func TestFakeTickerDropsAndStops(t *testing.T) {
	f := NewFake(time.Unix(0, 0))
	tk := f.NewTicker(time.Second)
	f.Advance(10 * time.Second) // ten ticks due, one delivered
	if _, ok := fired(tk.C()); !ok {
		t.Fatal("no tick")
	}
	if _, ok := fired(tk.C()); ok {
		t.Fatal("a missed tick was kept")
	}
	f.Advance(500 * time.Millisecond)
	if _, ok := fired(tk.C()); ok {
		t.Fatal("ticked between periods")
	}
	f.Advance(500 * time.Millisecond)
	if at, ok := fired(tk.C()); !ok || at != time.Unix(11, 0) {
		t.Fatalf("tick %v %v, want at 11 s", ok, at)
	}
	ch := f.WaitersChanged()
	tk.Stop()
	select {
	case <-ch:
	default:
		t.Error("Stop did not signal WaitersChanged")
	}
	f.Advance(time.Hour)
	if _, ok := fired(tk.C()); ok {
		t.Error("a stopped ticker ticked")
	}
}

// Timers fire in time order within one Advance.
func TestFakeOrder(t *testing.T) {
	f := NewFake(time.Unix(0, 0))
	a, b := f.NewTimer(2*time.Second), f.NewTimer(time.Second)
	f.Set(time.Unix(5, 0))
	ta, _ := fired(a.C())
	tb, _ := fired(b.C())
	if !tb.Before(ta) {
		t.Errorf("b fired at %v, a at %v", tb, ta)
	}
}

func TestSystem(t *testing.T) {
	c := System()
	before := time.Now()
	if c.Now().Before(before) {
		t.Error("System().Now() is behind time.Now()")
	}
	tm := c.NewTimer(time.Millisecond)
	<-tm.C()
	tk := c.NewTicker(time.Millisecond)
	<-tk.C()
	tk.Stop()
	<-c.After(time.Millisecond)
}
