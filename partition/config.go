package partition

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"time"

	"github.com/weftgrid/weft/recipes/clock"
)

// Config configures a Manager.
type Config struct {
	// DataDir is the node's data directory; partitions live in
	// DataDir/partitions/N, installed software in DataDir/software/CID.
	DataDir string
	// RunDir holds partitions and installed software, in
	// RunDir/nodes/<hash of DataDir>/, when partitions run as separate
	// users who cannot traverse DataDir's parents (a root node with its
	// data dir under /root). Default DefaultRunDir.
	RunDir string
	// Partitions is the number of partition slots. Default 8; 0 is a
	// manager with no slot (a node that hosts nothing).
	Partitions int
	// PortBase is the first port of partition 0. Default 20000.
	PortBase int
	// PortsPerPartition is the size of each partition's port range. Default 10.
	PortsPerPartition int
	// Users runs each partition under its own Unix user (UserPrefix + N),
	// created with useradd when missing. Only effective when the node runs
	// as root. Default true.
	Users bool
	// UserPrefix names partition users: "weftuser" gives weftuser0,
	// weftuser1… Default "": NodeUserPrefix(DataDir), unique to the node.
	UserPrefix string
	// InstallUser runs recipes' install sections when Users is effective.
	// Default UserPrefix + "install".
	InstallUser string
	// Cgroups places each partition in its own cgroup (v2 or v1) with CPU,
	// memory and pids limits when the host allows. Default true.
	Cgroups bool
	// PidsMax is the per-partition process limit (cgroup pids). Default 512.
	PidsMax int64
	// NoFile is RLIMIT_NOFILE of partition processes. Default 4096.
	NoFile uint64
	// Host is the address instances' ports are reached on ({{.Host}}).
	// Default 127.0.0.1.
	Host string
	// Weft is the weft binary path for recipes ({{.Weft}}). Default: this
	// executable.
	Weft string
	// PeerID is the node's peer ID ({{.Node.PeerID}}).
	PeerID string
	// Fetcher gets artifacts by CID. Optional: without it, recipes with
	// files by CID fail to install.
	Fetcher Fetcher
	// Results stores batch outputs by CID. Optional.
	Results ResultStore
	// StopGrace is how long processes get between SIGTERM and SIGKILL.
	// Default 5s.
	StopGrace time.Duration
	// RestartBackoff is the first restart delay, doubled after each quick
	// crash up to RestartBackoffMax. Defaults 500ms and 30s.
	RestartBackoff time.Duration
	// RestartBackoffMax: see RestartBackoff.
	RestartBackoffMax time.Duration
	// RestartBudget is how many quick crashes in a row (runs shorter than
	// 10 s) a restarted process may have: one more and it has failed for
	// good — the instance fails (its reason says so), which ends its
	// billing and lets its host free the partition. Default 10 (about two
	// minutes of crash loop with the default back-off); negative: no budget.
	RestartBudget int
	// ReconcileInterval is how often the loop re-checks everything even
	// when nothing changed. Default 2s.
	ReconcileInterval time.Duration
	// SampleInterval is how often CPU and memory are sampled. Default 2s.
	SampleInterval time.Duration
	// DiskInterval is how often partition directories are measured. Default 30s.
	DiskInterval time.Duration
	// Retention is how long samples are kept for Usage. Default 30m.
	Retention time.Duration
	// LogMaxBytes rotates a process log past this size. Default 10 MiB.
	LogMaxBytes int64
	// LogKeep is how many rotated logs are kept. Default 3.
	LogKeep int
	// KeepRunningOnClose leaves instance processes running at Close (to be
	// re-adopted by the next run). Default false: Close stops them.
	KeepRunningOnClose bool
	// Log receives the manager's logs. Default slog.Default().
	Log *slog.Logger
	// Clock is the manager's time: timestamps, sampling, reconciling,
	// restart back-off and budget, batch timeouts, promise periods and
	// retention. Default clock.System(). Waits on the kernel (a process to
	// die after a signal, a cgroup to freeze) run on real time whatever it
	// says (wallClock).
	Clock clock.Clock
}

// DefaultRunDir is Config.RunDir's default.
const DefaultRunDir = "/var/lib/weft"

// DefaultConfig returns the defaults; set DataDir before use.
func DefaultConfig() Config {
	return Config{
		RunDir:            DefaultRunDir,
		Partitions:        8,
		PortBase:          20000,
		PortsPerPartition: 10,
		Users:             true,
		Cgroups:           true,
		PidsMax:           512,
		NoFile:            4096,
		Host:              "127.0.0.1",
		StopGrace:         5 * time.Second,
		RestartBackoff:    500 * time.Millisecond,
		RestartBackoffMax: 30 * time.Second,
		RestartBudget:     10,
		ReconcileInterval: 2 * time.Second,
		SampleInterval:    2 * time.Second,
		DiskInterval:      30 * time.Second,
		Retention:         30 * time.Minute,
		LogMaxBytes:       10 << 20,
		LogKeep:           3,
	}
}

func (c *Config) validate() error {
	switch {
	case c.DataDir == "":
		return fmt.Errorf("%w: config: no DataDir", ErrInvalidSpec)
	case c.Partitions < 0 || c.Partitions > 4096:
		return fmt.Errorf("partition: config: %d partitions (want 0..4096)", c.Partitions)
	case c.PortsPerPartition < 1:
		return fmt.Errorf("partition: config: %d ports per partition (want ≥ 1)", c.PortsPerPartition)
	case c.PortBase < 1 || c.PortBase+c.Partitions*c.PortsPerPartition > 65536:
		return fmt.Errorf("partition: config: port range %d + %d×%d leaves 1..65535",
			c.PortBase, c.Partitions, c.PortsPerPartition)
	}
	if c.RunDir == "" {
		c.RunDir = DefaultRunDir
	}
	if c.Host == "" {
		c.Host = "127.0.0.1"
	}
	def := DefaultConfig()
	setD := func(p *time.Duration, d time.Duration) {
		if *p <= 0 {
			*p = d
		}
	}
	setD(&c.StopGrace, def.StopGrace)
	setD(&c.RestartBackoff, def.RestartBackoff)
	setD(&c.RestartBackoffMax, def.RestartBackoffMax)
	setD(&c.ReconcileInterval, def.ReconcileInterval)
	setD(&c.SampleInterval, def.SampleInterval)
	setD(&c.DiskInterval, def.DiskInterval)
	setD(&c.Retention, def.Retention)
	if c.RestartBudget == 0 {
		c.RestartBudget = def.RestartBudget
	}
	if c.PidsMax <= 0 {
		c.PidsMax = def.PidsMax
	}
	if c.NoFile == 0 {
		c.NoFile = def.NoFile
	}
	if c.LogMaxBytes <= 0 {
		c.LogMaxBytes = def.LogMaxBytes
	}
	if c.LogKeep <= 0 {
		c.LogKeep = def.LogKeep
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
	if c.Clock == nil {
		c.Clock = clock.System()
	}
	return nil
}

// NodeUserPrefix is the default UserPrefix of the node whose data dir is
// the absolute path dataDir: "weft-" + 8 hex digits of its SHA-256 + "-",
// so that two nodes on one machine never share a Unix user (names stay
// far below Linux's 32 characters).
func NodeUserPrefix(dataDir string) string {
	return "weft-" + nodeTag(dataDir) + "-"
}

// nodeTag is 8 hex digits of the SHA-256 of the data dir: the node's name
// in cgroups and user names.
func nodeTag(dataDir string) string {
	sum := sha256.Sum256([]byte(dataDir))
	return hex.EncodeToString(sum[:4])
}
