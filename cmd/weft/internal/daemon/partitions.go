package daemon

import (
	"context"
	"log/slog"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/weftgrid/weft/cmd/weft/internal/api"
	"github.com/weftgrid/weft/cmd/weft/internal/content"
	"github.com/weftgrid/weft/cmd/weft/internal/dashboard"
	"github.com/weftgrid/weft/cmd/weft/internal/localapi"
	"github.com/weftgrid/weft/ledger"
	"github.com/weftgrid/weft/ledger/settle"
	"github.com/weftgrid/weft/p2p"
	"github.com/weftgrid/weft/partition"
)

// partitionsSys is the partitions subsystem: the running manager m
// (Apply, Get, SetState, Free, Subscribe, Usage) and the routes of local
// instances (package localapi).
type partitionsSys struct {
	m       *partition.Manager
	deps    partitionDeps
	log     *slog.Logger
	count   int                     // [partitions] count
	sandbox partition.SandboxStatus // probed at start
}

// partitionDeps are what the partitions are built with. Each may be nil
// (tests start the partitions alone): without Node the instances have no
// requester and the advert is not refreshed; without Content artifacts and
// recipes by CID are refused; without Ledger no billing ends.
type partitionDeps struct {
	// Node is the p2p node: its peer ID and the capacity advert.
	Node *p2p.Node
	// Content is the recipe store: artifacts by CID, batch results,
	// recipes by CID.
	Content *content.Service
	// Ledger records the end of a hosted instance's billing.
	Ledger *ledger.Ledger
	// Notify tells the dashboard a topic changed (dashboard.Topic*).
	Notify func(topic string)
}

// newPartitions creates the partition manager, re-adopts what survived
// the last run, and registers the routes.
func newPartitions(ctx context.Context, e env, deps partitionDeps) (*partitionsSys, error) {
	pc := e.cfg.Partitions
	cfg := partition.DefaultConfig()
	cfg.DataDir = e.cfg.Node.DataDir
	cfg.Partitions = pc.Count
	cfg.PortBase = pc.PortBase
	cfg.PortsPerPartition = pc.PortsPerPartition
	cfg.Users = pc.Users
	if pc.UserPrefix != "" {
		cfg.UserPrefix = pc.UserPrefix
	}
	if pc.RunDir != "" {
		cfg.RunDir = pc.RunDir
	}
	cfg.Cgroups = pc.Cgroups
	cfg.Host = pc.Host
	cfg.StopGrace = pc.StopGraceDuration()
	cfg.SampleInterval = pc.SampleIntervalDuration()
	if pc.LogMaxBytes > 0 {
		cfg.LogMaxBytes = pc.LogMaxBytes
	}
	cfg.RestartBudget = pc.RestartBudget
	// An in-place restart (upgrade) leaves the processes to the next run,
	// which re-adopts them.
	cfg.KeepRunningOnClose = pc.KeepOnStop
	cfg.Log = e.log.With("subsystem", "partitions")
	if deps.Content != nil {
		cfg.Fetcher, cfg.Results = deps.Content, deps.Content
	}
	if deps.Node != nil {
		cfg.PeerID = deps.Node.ID().String()
	}
	if deps.Notify == nil {
		deps.Notify = func(string) {}
	}
	m, err := partition.New(cfg)
	if err != nil {
		return nil, err
	}
	if err := m.Start(ctx); err != nil {
		m.Close()
		return nil, err
	}
	e.onClose(m.Close)
	s := &partitionsSys{m: m, deps: deps, log: e.log, count: pc.Count, sandbox: m.Sandbox()}
	lim := m.Limits()
	e.log.Info("partitions ready", "count", pc.Count, "free", m.Free(), "limits", lim.Summary)

	h := &localapi.Handlers{Parts: m}
	if deps.Content != nil {
		h.Recipes = deps.Content
	}
	if deps.Node != nil {
		h.Requester = deps.Node.ID().String()
	}
	h.Routes(e.api)
	sb := s.sandbox
	e.log.Info("partition sandbox", "landlock_abi", sb.LandlockABI, "fs", sb.FS, "bind_ports", sb.BindPorts,
		"scoped_signals", sb.ScopedSignals, "private_tmp", sb.PrivateTmp, "disk_quota", sb.DiskQuota,
		"rlimits", sb.Rlimits, "reasons", strings.Join(sb.Reasons, "; "))
	if err := e.metrics.Register(partitionCollector{m}); err != nil {
		e.log.Warn("partitions: metrics", "err", err)
	}

	// Follow changes: end billing, refresh the dashboard and the capacity advert.
	events, unsub := m.Subscribe()
	e.onClose(func() error { unsub(); return nil })
	s.publishFree()
	go func() {
		for st := range events {
			s.endBilling(ctx, st)
			deps.Notify(dashboard.TopicPartitions)
			s.publishFree()
		}
	}()
	return s, nil
}

// status fills the "sandbox" and "partitions" sections of GET /v1/status
// and the partitions' line of its limits.
func (s *partitionsSys) status(st *api.Status) {
	lim := s.m.Limits()
	st.Sandbox = s.sandbox
	st.Partitions = &api.PartitionsStatus{Total: s.count, Free: s.m.Free(), Limits: lim}
	if st.Limits == nil {
		st.Limits = map[string]any{}
	}
	st.Limits["partitions"] = lim.Summary
}

// endBilling ends the billable span of the contract under which this node
// hosts a market instance once the instance is over on its host: stopped or
// destroyed as its requester asked, failed for good, or a completed batch
// job. The end entry names the time and the reason; the biller bills the
// partial last slice up to it and nothing after, and the audit counts no
// slice after it as unbilled. A stopped instance keeps its partition (its
// disk) but is billed no more: started again, it runs under a new contract
// (a new epoch, placed on this node when it can take it).
func (s *partitionsSys) endBilling(ctx context.Context, st partition.InstanceStatus) {
	state, reason, ok := billingEnd(st)
	if !ok || s.deps.Ledger == nil {
		return
	}
	at := st.UpdatedAt
	if at.IsZero() {
		at = time.Now()
	}
	if _, err := s.deps.Ledger.EndSpan(ctx, st.ID, st.Epoch, at, state, reason); err != nil {
		s.log.Warn("ledger: end of billing", "instance", st.ID, "err", err)
	}
}

// billingEnd maps a market instance's status on its host to the end of its
// contract's billable span (ok false: billing goes on).
func billingEnd(st partition.InstanceStatus) (state, reason string, ok bool) {
	if st.Requester == "" || st.Epoch == 0 {
		return "", "", false // a local instance: no contract
	}
	switch {
	case st.Phase == partition.PhaseStopped && st.State == partition.StateStopped:
		return ledger.EndStopped, "stopped as its requester asked", true
	case st.Phase == partition.PhaseDestroyed && st.State == partition.StateDestroyed:
		return ledger.EndDestroyed, "destroyed as its requester asked", true
	case st.Phase == partition.PhaseFailed:
		return ledger.EndFailed, st.Error, true
	case st.Phase == partition.PhaseCompleted:
		return ledger.EndDone, "", true
	}
	return "", "", false
}

// publishFree puts the free partition count in the node's advert.
func (s *partitionsSys) publishFree() {
	n := s.deps.Node
	if n == nil {
		return
	}
	a := n.Advert()
	if free := s.m.Free(); a.FreePartitions != free {
		a.FreePartitions = free
		if err := n.SetAdvert(a); err != nil {
			s.log.Debug("partitions: advert", "err", err)
		}
	}
}

// partitionUsage is the ledger's usage source: what an instance this node
// runs used in a slice.
type partitionUsage struct{ m *partition.Manager }

// Usage implements ledger.UsageSource. A period the metering holds samples
// for is billed even when the instance
// is gone by now (the samples outlive it): the slices of a copy that was
// fenced, failed or destroyed while its provider waited for a sync are
// still owed. With no samples, an instance this node does not hold was not
// run here (nothing to bill); one it holds is retried (its first samples
// are not in yet).
func (p partitionUsage) Usage(id string, from, to time.Time) (ledger.Usage, bool, error) {
	u, err := p.m.Usage(id, from, to)
	if err == nil {
		return settle.UsageFromMeter(u.CPUNanos, u.MemAvgBytes, u.MemPeakBytes, u.DiskBytes, u.NetBytes, to.Sub(from)), true, nil
	}
	if st, ok := p.m.Get(id); !ok || st.Partition < 0 {
		return ledger.Usage{}, false, nil
	}
	return ledger.Usage{}, true, err
}

// partitionCollector exports the partitions' state to Prometheus at scrape
// time: slots, instances by phase, restarts and failing promises.
type partitionCollector struct{ m *partition.Manager }

var (
	descPartitions = prometheus.NewDesc("weft_partitions", "Partition slots on this node.", nil, nil)
	descFree       = prometheus.NewDesc("weft_partitions_free", "Partitions available for new instances.", nil, nil)
	descInstances  = prometheus.NewDesc("weft_partition_instances", "Instances on this node by phase.", []string{"phase"}, nil)
	descRestarts   = prometheus.NewDesc("weft_partition_process_restarts", "Process restarts since each instance started, summed.", nil, nil)
	descPromises   = prometheus.NewDesc("weft_partition_promises_failing", "Promises whose last check failed.", nil, nil)
	descEnforced   = prometheus.NewDesc("weft_partition_limits_enforced", "1 when CPU and memory limits are enforced on partitions.", nil, nil)
)

func (c partitionCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descPartitions, descFree, descInstances, descRestarts, descPromises, descEnforced} {
		ch <- d
	}
}

func (c partitionCollector) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(descPartitions, prometheus.GaugeValue, float64(len(c.m.Partitions())))
	ch <- prometheus.MustNewConstMetric(descFree, prometheus.GaugeValue, float64(c.m.Free()))
	phases := map[partition.Phase]int{}
	restarts, failing := 0, 0
	for _, st := range c.m.List() {
		phases[st.Phase]++
		for _, p := range st.Processes {
			restarts += p.Restarts
		}
		for _, p := range st.Promises {
			if !p.OK && !p.CheckedAt.IsZero() {
				failing++
			}
		}
	}
	for _, ph := range []partition.Phase{partition.PhasePending, partition.PhaseInstalling, partition.PhaseStarting,
		partition.PhaseRunning, partition.PhaseFailed, partition.PhaseCompleted, partition.PhaseStopped, partition.PhaseDestroying} {
		ch <- prometheus.MustNewConstMetric(descInstances, prometheus.GaugeValue, float64(phases[ph]), string(ph))
	}
	ch <- prometheus.MustNewConstMetric(descRestarts, prometheus.GaugeValue, float64(restarts))
	ch <- prometheus.MustNewConstMetric(descPromises, prometheus.GaugeValue, float64(failing))
	enforced := 0.0
	if c.m.Limits().Enforced {
		enforced = 1
	}
	ch <- prometheus.MustNewConstMetric(descEnforced, prometheus.GaugeValue, enforced)
}
