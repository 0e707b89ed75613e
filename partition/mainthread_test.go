package partition

import (
	"os"
	"slices"
	"strings"
	"testing"
)

// leaderUIDs returns the Uid line of /proc/self/status: the ids of the
// process's main thread, which is what every other process sees of it.
func leaderUIDs(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "Uid:") {
			return strings.Join(strings.Fields(l)[1:], " ")
		}
	}
	t.Fatal("no Uid line in /proc/self/status")
	return ""
}

// A partition's kill becomes the partition's user on threads of its own,
// many times over; the node's main thread must stay root (else the node
// is one of the user's processes, and the kill SIGKILLs the node), and
// the node is never among the user's processes.
func TestKillAsUserNeverTaintsTheMainThread(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (a thread becomes another user)")
	}
	acct := account{Name: "weft-mainthread-test", UID: 64999, GID: 64999} // no process runs as it
	for range 300 {
		killAsUser(acct)
		if got := leaderUIDs(t); got != "0 0 0 0" {
			t.Fatalf("the main thread's uids became %q after a kill as uid %d: the node now counts as the partition user's process", got, acct.UID)
		}
	}
	if pids := userProcs(acct.UID); slices.Contains(pids, os.Getpid()) {
		t.Fatalf("userProcs(%d) lists the node itself: %v", acct.UID, pids)
	}
}
