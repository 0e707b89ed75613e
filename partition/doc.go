// Package partition is weft's local runtime (SlapOS's slapgrid and
// slapformat): N partition slots per node, each with its own directory,
// port range, Unix user (when the node runs as root) and cgroup; process
// supervision with restart back-off and rotated logs; promises (TCP, HTTP,
// command); metering; and a reconcile loop that drives what runs towards
// the persisted desired state, also after a crash of the node.
//
// Usage:
//
//	cfg := partition.DefaultConfig()
//	cfg.DataDir = dataDir
//	m, err := partition.New(cfg)
//	err = m.Start(ctx)              // re-adopts instances that survived a crash
//	defer m.Close()
//	err = m.Apply(partition.InstanceSpec{ID: id, Recipe: r, Params: p, State: partition.StateStarted})
//	st, ok := m.Get(id)             // phase, promises, connection parameters
//	u, err := m.Usage(id, from, to) // one billing slice
//
// Layout on disk: DataDir/partitions/state.cbor (desired state and the pids
// of what runs), DataDir/partitions/N (partition N: home, tmp/, out/, log/),
// DataDir/software/CID (installed recipes, shared and read-only to instances).
//
// The decision of what to do is the pure function Reconcile; the Manager's
// loop feeds it and carries out its actions. The metering arithmetic is the
// pure package partition/metering.
//
// Concurrency: a Manager is safe for concurrent use. One mutex guards its
// state; actions, supervisors and promise checks run in their own goroutines
// and take it briefly. Close waits for every goroutine it started except the
// per-process waiters of processes left running (KeepRunningOnClose).
package partition
