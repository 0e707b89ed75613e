package demo

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
)

// ErrNoPorts means no free range of partition ports was found.
var ErrNoPorts = errors.New("demo: no free range of partition ports")

// Partition port ranges are drawn from [minPortBase, maxPortEnd).
const (
	minPortBase = 20000
	maxPortEnd  = 60000
)

// pickPortBase finds n consecutive free TCP ports on 127.0.0.1 in
// [minPortBase, maxPortEnd), starting at a random place so that runs and
// other tests on the machine are unlikely to collide. It is best effort: a
// port can be taken between the check and its use.
func pickPortBase(n int) (int, error) {
	if n <= 0 || n > maxPortEnd-minPortBase {
		return 0, fmt.Errorf("%w: %d ports asked", ErrNoPorts, n)
	}
	for range 32 {
		base := minPortBase + rand.IntN(maxPortEnd-minPortBase-n+1)
		base -= base % 10
		if portsFree(base, n) {
			return base, nil
		}
	}
	return 0, fmt.Errorf("%w of %d ports in %d..%d", ErrNoPorts, n, minPortBase, maxPortEnd)
}

// portsFree reports whether every port in [base, base+n) can be bound.
func portsFree(base, n int) bool {
	for p := base; p < base+n; p++ {
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			return false
		}
		ln.Close()
	}
	return true
}
