package partition

import (
	"os"
	"os/exec"
	"testing"
)

func TestReadProcStat(t *testing.T) {
	self, ok := readProcStat(os.Getpid())
	if !ok || self.PID != os.Getpid() || self.PPID != os.Getppid() || self.Start == 0 || self.RSSPages <= 0 {
		t.Fatalf("self: %+v %v", self, ok)
	}
	if !procAlive(os.Getpid(), self.Start) || procAlive(os.Getpid(), self.Start+1) {
		t.Error("procAlive does not check the start time")
	}
	// A child that has exited and been reaped is gone.
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	if _, ok := readProcStat(cmd.Process.Pid); ok && procAlive(cmd.Process.Pid, self.Start) {
		t.Error("a reaped child reads as alive")
	}
	found := false
	for _, p := range scanProcs() {
		found = found || p.PID == os.Getpid()
	}
	if !found {
		t.Error("scanProcs does not list this process")
	}
}
