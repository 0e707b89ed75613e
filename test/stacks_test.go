package test

import (
	"strings"
	"testing"
)

// stuckGoroutines keeps, from a SIGQUIT dump, the goroutines of weft's
// code blocked for a minute or more and those acting for the partition
// manager, and nothing else.
func TestStuckGoroutines(t *testing.T) {
	dump := `SIGQUIT: quit
PC=0x0 m=0 sigcode=0

goroutine 1 [running]:
main.main()

goroutine 7 [sync.Mutex.Lock, 3 minutes]:
sync.(*Mutex).Lock(...)
github.com/weftgrid/weft/partition.(*Manager).Partitions(0x1)

goroutine 8 [select, 5 minutes]:
net/http.(*persistConn).writeLoop(0x2)

goroutine 9 [chan receive]:
github.com/weftgrid/weft/partition.(*sandbox).do(0x3)

goroutine 10 [sleep]:
time.Sleep(0x1)
github.com/weftgrid/weft/partition.(*Manager).stopRun(0x4)
`
	got := stuckGoroutines(dump)
	if !strings.Contains(got, "goroutine 7 ") || !strings.Contains(got, "goroutine 10 ") || strings.Contains(got, "goroutine 8 ") ||
		strings.Contains(got, "goroutine 9 ") || strings.Contains(got, "goroutine 1 ") {
		t.Fatalf("stuck goroutines:\n%s", got)
	}
}
