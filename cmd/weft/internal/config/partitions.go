package config

import (
	"fmt"
	"path/filepath"
	"regexp"
	"time"
)

var userPrefixRe = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,23}$`)

// PartitionsConfig is the [partitions] section: the local runtime's slots.
type PartitionsConfig struct {
	// Count is the number of partitions (slots for instances). Default 8;
	// 'weft node --partitions N'. 0 makes a requester-only node: it hosts
	// nothing, never bids and advertises no capacity, but takes part in the
	// membership, gossip, the ledger and guardianship.
	Count int `toml:"count"`
	// PortBase is the first TCP port of partition 0; partition N gets
	// [PortBase + N×PortsPerPartition, … + PortsPerPartition − 1].
	// Default 20000; 'weft node --port-base P'.
	PortBase int `toml:"port_base"`
	// PortsPerPartition is the size of each partition's port range. Default 10.
	PortsPerPartition int `toml:"ports_per_partition"`
	// Users runs each partition as its own Unix user (PREFIXN, created
	// with useradd; installs run as PREFIXinstall) when the node runs as
	// root. Default true.
	Users bool `toml:"users"`
	// UserPrefix names the partition users, PREFIX0, PREFIX1…, and the
	// install user, PREFIXinstall. Default "": "weft-" followed by eight
	// hex digits of a hash of the data dir and "-" (weft-1a2b3c4d-0…), so
	// two nodes on one machine never share a user. A prefix set here must
	// be unique to the node as well.
	UserPrefix string `toml:"user_prefix"`
	// RunDir holds partitions and installed software (in
	// RUN_DIR/nodes/<hash of the data dir>/) when the node runs as root
	// with separate partition users and the data dir's parents are not
	// world-traversable (the default ~/.weft under /root). Absolute path.
	// Default "/var/lib/weft".
	RunDir string `toml:"run_dir"`
	// Cgroups puts each partition in a cgroup (v2, else v1) with CPU,
	// memory and pids limits where the host allows. Default true.
	Cgroups bool `toml:"cgroups"`
	// Host is the address instances' ports are reached on, used in
	// connection parameters ({{.Host}}). Default "127.0.0.1".
	Host string `toml:"host"`
	// StopGrace is the time between SIGTERM and SIGKILL when stopping an
	// instance. Go duration string. Default "5s".
	StopGrace string `toml:"stop_grace"`
	// SampleInterval is how often CPU and memory are sampled for metering.
	// Go duration string. Default "2s".
	SampleInterval string `toml:"sample_interval"`
	// LogMaxBytes rotates a process log past this many bytes. Default 10485760.
	LogMaxBytes int64 `toml:"log_max_bytes"`
	// RestartBudget is how many quick crashes in a row (runs shorter than
	// 10 s) a service's process may have: one more and the instance has
	// failed for good (its run is killed, its billing ends and its
	// partition is freed once its requester lets it go). Default 10, about
	// two minutes of crash loop with the restart back-off (0.5 s doubling
	// to 30 s); 1..1000.
	RestartBudget int `toml:"restart_budget"`
	// KeepOnStop makes SIGTERM an in-place restart: the node leaves its
	// instances running and stops without leaving the grid, so that when
	// it starts again (an upgrade) it re-adopts them and keeps its
	// contracts. Requesters move the instances only if it stays away
	// longer than their grace. Default false: SIGTERM stops the instances
	// and leaves the grid. 'weft node --keep-instances'.
	KeepOnStop bool `toml:"keep_on_stop"`
}

func defaultPartitions() PartitionsConfig {
	return PartitionsConfig{Count: 8, PortBase: 20000, PortsPerPartition: 10, Users: true, UserPrefix: "", RunDir: "/var/lib/weft", Cgroups: true,
		Host: "127.0.0.1", StopGrace: "5s", SampleInterval: "2s", LogMaxBytes: 10 << 20, RestartBudget: 10}
}

// StopGraceDuration is StopGrace parsed (5 s if empty or invalid).
func (c PartitionsConfig) StopGraceDuration() time.Duration {
	return parseOr(c.StopGrace, 5*time.Second)
}

// SampleIntervalDuration is SampleInterval parsed (2 s if empty or invalid).
func (c PartitionsConfig) SampleIntervalDuration() time.Duration {
	return parseOr(c.SampleInterval, 2*time.Second)
}

func parseOr(s string, def time.Duration) time.Duration {
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return def
	}
	return d
}

func (c *PartitionsConfig) validate() error {
	if c.Count < 0 || c.Count > 4096 {
		return fmt.Errorf("partitions.count: %d outside [0, 4096] (0: a requester-only node)", c.Count)
	}
	if c.PortsPerPartition < 1 || c.PortsPerPartition > 1000 {
		return fmt.Errorf("partitions.ports_per_partition: %d outside [1, 1000]", c.PortsPerPartition)
	}
	if c.PortBase < 1024 || c.PortBase+c.Count*c.PortsPerPartition > 65536 {
		return fmt.Errorf("partitions.port_base: %d + %d partitions × %d ports leaves [1024, 65535]",
			c.PortBase, c.Count, c.PortsPerPartition)
	}
	for name, s := range map[string]string{"stop_grace": c.StopGrace, "sample_interval": c.SampleInterval} {
		if s == "" {
			continue
		}
		if d, err := time.ParseDuration(s); err != nil || d <= 0 {
			return fmt.Errorf("partitions.%s: %q is not a positive duration", name, s)
		}
	}
	if c.UserPrefix != "" && !userPrefixRe.MatchString(c.UserPrefix) {
		return fmt.Errorf("partitions.user_prefix: %q (lower-case letters, digits, '-' and '_', starting with a letter, at most 24)", c.UserPrefix)
	}
	if c.RunDir != "" && !filepath.IsAbs(c.RunDir) {
		return fmt.Errorf("partitions.run_dir: %q is not an absolute path", c.RunDir)
	}
	if c.RestartBudget < 1 || c.RestartBudget > 1000 {
		return fmt.Errorf("partitions.restart_budget: %d outside [1, 1000]", c.RestartBudget)
	}
	if c.LogMaxBytes < 0 {
		return fmt.Errorf("partitions.log_max_bytes: negative")
	}
	return nil
}
