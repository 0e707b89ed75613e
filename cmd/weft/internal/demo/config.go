package demo

import (
	"errors"
	"fmt"
	"time"
)

// ErrConfig prefixes every configuration error of the demo.
var ErrConfig = errors.New("demo: config")

// Config says how to run the demo.
type Config struct {
	// Nodes is the number of node processes in the grid. Default 5; at least 3
	// (the requester, the host that dies, and a node to take over).
	Nodes int
	// Slice is the ledger slice length passed to every node (--slice).
	// Default 1s.
	Slice time.Duration
	// Partitions is the number of partitions per node (--partitions). Default 4.
	Partitions int
	// Keep leaves the grid running after the steps until the context ends.
	// Default false.
	Keep bool
	// JSON prints one JSON line per step on stdout and the summary last.
	// Default false (human output on stderr).
	JSON bool
	// Bin is the weft binary to run for nodes and client commands.
	// Default "" = os.Executable().
	Bin string
	// RecipesDir holds webserver.toml and primes.toml. Default "" = found
	// by looking for recipes/examples from the working directory upwards and
	// next to the binary, else the copies embedded in the binary.
	RecipesDir string
	// WorkDir is the parent of the demo's temporary folder. Default "" = the
	// system temporary directory.
	WorkDir string
	// Timeout bounds the steps (not the --keep wait). Default 115s.
	Timeout time.Duration
	// Message is the web server's message parameter. Default "" = a fresh
	// random "hello from weft demo <hex>" so the page proves it came from
	// this request.
	Message string
	// PrimesN is the primes job's parameter n. Default 100000.
	PrimesN int
	// PrimesWant is the count the primes result must hold. Default 9592.
	PrimesWant int
}

// DefaultConfig returns the defaults documented on Config.
func DefaultConfig() Config {
	return Config{
		Nodes:      5,
		Slice:      time.Second,
		Partitions: 4,
		Timeout:    115 * time.Second,
		PrimesN:    100000,
		PrimesWant: 9592,
	}
}

func (c *Config) validate() error {
	switch {
	case c.Nodes < 3:
		return fmt.Errorf("%w: --nodes must be at least 3 (got %d): the requester, a host that is killed, and a node that takes over", ErrConfig, c.Nodes)
	case c.Nodes > 64:
		return fmt.Errorf("%w: --nodes %d is more than a local demo should start (max 64)", ErrConfig, c.Nodes)
	case c.Slice < 100*time.Millisecond:
		return fmt.Errorf("%w: --slice must be at least 100ms (got %s)", ErrConfig, c.Slice)
	case c.Slice > 30*time.Second:
		return fmt.Errorf("%w: --slice %s is too long for a demo that waits for a few slices (max 30s)", ErrConfig, c.Slice)
	case c.Partitions < 1:
		return fmt.Errorf("%w: partitions must be at least 1", ErrConfig)
	case c.Timeout <= 0:
		return fmt.Errorf("%w: timeout must be positive", ErrConfig)
	case c.PrimesN < 2:
		return fmt.Errorf("%w: primes n must be at least 2", ErrConfig)
	}
	return nil
}
