package partition

import (
	"os"
	"testing"
)

func TestParseProcStat(t *testing.T) {
	line := "4242 (a (weird) name) S 1 4242 4242 0 -1 4194560 100 0 0 0 150 50 7 3 20 0 1 0 987654 1000000 321 18446744073709551615"
	s, ok := parseProcStat([]byte(line))
	if !ok {
		t.Fatal("not parsed")
	}
	if s.PID != 4242 || s.State != 'S' || s.PPID != 1 || s.PGID != 4242 || s.CPUTicks != 210 || s.Start != 987654 || s.RSSPages != 321 {
		t.Errorf("got %+v", s)
	}
	for _, bad := range []string{"", "12", "x (y) S", "12 (y) S 1 2"} {
		if _, ok := parseProcStat([]byte(bad)); ok {
			t.Errorf("%q parsed", bad)
		}
	}
	self, ok := readProcStat(os.Getpid())
	if !ok || self.PID != os.Getpid() || self.Start == 0 {
		t.Fatalf("self: %+v %v", self, ok)
	}
	if !procAlive(os.Getpid(), self.Start) || procAlive(os.Getpid(), self.Start+1) {
		t.Error("procAlive does not check the start time")
	}
}

func FuzzParseProcStat(f *testing.F) {
	f.Add([]byte("1 (init) S 0 1 1 0 -1 4194560 100 0 0 0 150 50 7 3 20 0 1 0 9 1000 3 18446744073709551615"))
	f.Add([]byte("2 ()) R"))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, ok := parseProcStat(b)
		if ok && s.State == 0 {
			t.Fatal("parsed without a state")
		}
	})
}
