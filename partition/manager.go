package partition

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/weftgrid/weft/partition/metering"
	"github.com/weftgrid/weft/recipes"
	"github.com/weftgrid/weft/recipes/safefs"
)

// Manager runs instances in the node's partitions and reconciles them with
// their desired state.
type Manager struct {
	cfg       Config
	dir       string // DataDir/partitions, or below RunDir (layout.go)
	softDir   string // DataDir/software, or below RunDir
	statePath string // DataDir/partitions/state.cbor
	cg        *cgroups
	limits    Limits
	sandbox   SandboxStatus // what the probe at New saw in force
	disk      diskImages    // the partitions' disk images (hard disk limit, as root)
	noSandbox bool          // benchmarks only: runs without their sandbox (the baseline)
	users     []account     // per partition; zero accounts when not isolated
	installAs account
	net       *netMeter // bytes sent and received per partition user (nil: unmetered)
	weft      string    // guarded by layoutMu until the layout is created

	// diskLegacy: partitions whose tree predates the hard limit (files and
	// no image): metered only until their instance is destroyed. Under mu.
	diskLegacy map[int]bool

	lay      layout
	isolated bool // partitions run as their own users
	// ownUsers: the users are the node's by default name (NodeUserPrefix),
	// deleted when it closes with no instance (see removeOwnUsers).
	ownUsers   bool
	layoutMu   sync.Mutex
	layoutDone bool

	// sampleMu orders concurrent samplers (see sampleIDs): a sample's
	// timestamp and its cgroup readings are taken together under it.
	sampleMu sync.Mutex

	mu      sync.Mutex
	insts   map[string]*instance
	slots   []string // partition index → instance ID ("" = free)
	series  map[string]*series
	subs    map[int]*subscriber
	nextSub int
	started bool
	closed  bool

	// Persistence: snapshots are numbered under mu and written under
	// writeMu, never older over newer. Apply writes synchronously; other
	// changes (pids, phases) are coalesced by the flusher.
	seq     uint64
	writeMu sync.Mutex
	written uint64
	dirty   chan struct{}

	installMu   sync.Mutex
	installLock map[string]*sync.Mutex
	// installRun: one install runs at a time (they share the install user
	// and cgroup; see install).
	installRun sync.Mutex
	// installRW are more directories install sandboxes may write (tests).
	installRW []string

	kick      chan struct{}
	ctx       context.Context
	cancel    context.CancelFunc
	loops     sync.WaitGroup // reconcile and sampling loops
	ops       sync.WaitGroup // actions in progress
	closeOnce sync.Once
}

// instance is one instance's desired state, facts and live run.
type instance struct {
	rec    record
	recipe *recipes.Recipe
	st     InstanceStatus
	busy   bool
	run    *runState
}

// New prepares a Manager: it creates the directories, detects what limits
// the host enforces, creates partition users when running as root, and
// loads the persisted state. Start re-adopts or restarts what ran before.
func New(cfg Config) (m *Manager, err error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	cfg.DataDir = abs
	ownUsers := cfg.UserPrefix == ""
	if cfg.UserPrefix == "" {
		cfg.UserPrefix = NodeUserPrefix(abs)
	}
	if cfg.InstallUser == "" {
		cfg.InstallUser = cfg.UserPrefix + "install"
	}
	isolated := cfg.Users && os.Geteuid() == 0
	lay, err := resolveLayout(abs, cfg.RunDir, isolated)
	if err != nil {
		return nil, err
	}
	m = &Manager{
		cfg:         cfg,
		dir:         lay.parts,
		softDir:     lay.soft,
		statePath:   lay.state,
		insts:       map[string]*instance{},
		slots:       make([]string, cfg.Partitions),
		series:      map[string]*series{},
		subs:        map[int]*subscriber{},
		installLock: map[string]*sync.Mutex{},
		kick:        make(chan struct{}, 1),
		dirty:       make(chan struct{}, 1),
		weft:        cfg.Weft,
	}
	if m.weft == "" {
		if exe, err := os.Executable(); err == nil {
			m.weft = exe
		}
	}
	m.lay, m.isolated = lay, isolated
	m.disk = diskImages{dir: filepath.Join(lay.base, "disk"), parts: lay.parts}
	m.ownUsers = ownUsers && isolated
	if err := os.MkdirAll(filepath.Dir(lay.state), 0o700); err != nil {
		return nil, fmt.Errorf("partition: %w", err)
	}
	m.cg = detectCgroups("weft-"+nodeTag(abs), cfg.Cgroups)
	defer func(cg *cgroups) {
		if err != nil {
			cg.cleanup() // nothing of a node that did not start stays
		}
	}(m.cg)
	m.users = make([]account, cfg.Partitions)
	var why []string
	switch {
	case !cfg.Users:
		why = append(why, "separate partition users disabled by configuration")
	case !isolated:
		why = append(why, "partitions share the node's Unix user (the node does not run as root)")
	default:
		for i := range m.users {
			a, err := ensureUser(cfg.UserPrefix + strconv.Itoa(i))
			if err != nil {
				return nil, err
			}
			m.users[i] = a
		}
		a, err := ensureUser(cfg.InstallUser)
		if err != nil {
			return nil, err
		}
		m.installAs = a
		if lay.relocated {
			cfg.Log.Info("partition: the data dir is not reachable by partition users; partitions and software live in the run dir",
				"data_dir", abs, "dir", lay.base)
		}
	}
	var netWhy string
	if m.net, netWhy = newNetMeter(abs, m.users); m.net == nil {
		cfg.Log.Info("partition: "+netWhy, "data_dir", abs)
	}
	defer func(n *netMeter) {
		if err != nil {
			n.close()
		}
	}(m.net)
	m.sandbox = m.probeSandbox()
	if !m.sandbox.Rlimits {
		why = append(why, "rlimits did not take effect in a probe (see the sandbox's reasons)")
	}
	m.limits = computeLimits(m.cg, len(m.users) > 0 && m.users[0].set(), m.sandbox.Rlimits, why)
	if m.net != nil {
		// Bytes are metered: drop the generic reason.
		m.limits.NetMetered, m.limits.NetReceived = true, m.net.received
		m.limits.Reasons = slices.DeleteFunc(m.limits.Reasons, func(r string) bool { return strings.HasPrefix(r, "network bytes are not metered") })
		if !m.net.received {
			m.limits.Reasons = append(m.limits.Reasons, "network bytes received are not metered: "+strings.TrimPrefix(netWhy, "net: "))
		}
	}
	st, err := loadState(m.statePath)
	if err != nil {
		return nil, err
	}
	for _, r := range st.Instances {
		in := &instance{rec: r}
		if len(r.Recipe) > 0 {
			rc, err := recipes.DecodeCanonical(r.Recipe)
			if err != nil {
				return nil, fmt.Errorf("%w: instance %s: recipe: %v", ErrState, r.ID, err)
			}
			in.recipe = rc
		}
		in.st = m.baseStatus(in)
		if r.Partition >= 0 {
			if r.Partition < len(m.slots) && m.slots[r.Partition] == "" {
				m.slots[r.Partition] = r.ID
			} else {
				in.st.Error = fmt.Sprintf("partition %d no longer exists or is taken", r.Partition)
			}
		}
		m.insts[r.ID] = in
	}
	// In the run dir, a node's directories exist only while it has
	// instances (ensureLayout, Close); in the data dir, always.
	if !lay.relocated || len(m.insts) > 0 {
		if err := m.ensureLayout(); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// ensureLayout creates the partition and software roots and, for
// partition users who cannot reach the executable, its copy ({{.Weft}}).
func (m *Manager) ensureLayout() error {
	m.layoutMu.Lock()
	defer m.layoutMu.Unlock()
	if m.layoutDone {
		return nil
	}
	if err := m.lay.create(m.cfg.DataDir, m.isolated); err != nil {
		return err
	}
	if err := migrateLegacyMarkers(m.lay.soft, m.cfg.Clock.Now()); err != nil {
		return fmt.Errorf("partition: install markers of the previous version: %w", err)
	}
	if m.isolated && m.weft != "" {
		w, err := reachableExecutable(m.weft, filepath.Join(m.lay.base, "bin"))
		if err != nil {
			return err
		}
		m.weft = w
	}
	m.layoutDone = true
	return nil
}

// removeEmptyLayout removes the node's directory in the run dir when no
// instance is left (at Close): nodes that run nothing leave nothing there.
// Installed software goes with it (a cache: installed again when needed).
func (m *Manager) removeEmptyLayout() {
	m.layoutMu.Lock()
	defer m.layoutMu.Unlock()
	if !m.lay.relocated || !m.layoutDone {
		return
	}
	if err := safefs.RemoveAll(m.lay.base); err != nil {
		m.cfg.Log.Warn("partition: remove the node's run directory", "dir", m.lay.base, "err", err)
		return
	}
	nodes := filepath.Dir(m.lay.base)
	if os.Remove(nodes) == nil { // only when empty
		_ = os.Remove(filepath.Dir(nodes))
	}
	m.layoutDone = false
}

// Start re-adopts instance processes that survived the last run (verified
// by pid and start time) or stops them so that the loop restarts them,
// then starts the reconcile and metering loops. Calling it twice is an error.
func (m *Manager) Start(ctx context.Context) error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return ErrClosed
	}
	if m.started {
		m.mu.Unlock()
		return fmt.Errorf("partition: started twice")
	}
	m.started = true
	m.ctx, m.cancel = context.WithCancel(context.WithoutCancel(ctx))
	m.mu.Unlock()
	m.recover()
	m.loops.Add(3)
	go m.reconcileLoop()
	go m.sampleLoop()
	go m.flushLoop()
	// Stop with ctx too.
	go func() {
		select {
		case <-ctx.Done():
			m.Close()
		case <-m.ctx.Done():
		}
	}()
	m.trigger()
	return nil
}

// Close stops the loops and, unless Config.KeepRunningOnClose, every
// instance's processes (their desired state is kept, so the next run starts
// them again). It is idempotent.
func (m *Manager) Close() error {
	m.closeOnce.Do(func() {
		m.mu.Lock()
		m.closed = true
		started := m.started
		m.mu.Unlock()
		if !started {
			m.net.close()
			m.cg.cleanup() // New made the node's cgroup directory
			return
		}
		m.cancel()
		m.loops.Wait()
		m.ops.Wait()
		if !m.cfg.KeepRunningOnClose {
			defer m.net.close()
			var wg sync.WaitGroup
			m.mu.Lock()
			for _, in := range m.insts {
				if rs := in.run; rs != nil {
					wg.Add(1)
					go func(in *instance) {
						defer wg.Done()
						m.stopRun(in, rs)
						m.mu.Lock()
						if in.run == rs {
							in.run = nil
							if active(in.rec.Phase) {
								in.rec.Phase = PhaseStopped
							}
						}
						m.mu.Unlock()
					}(in)
				}
			}
			m.mu.Unlock()
			wg.Wait()
		}
		if !m.cfg.KeepRunningOnClose {
			m.cg.cleanup()
			if os.Geteuid() == 0 {
				m.disk.unmountAll()
			}
		}
		m.mu.Lock()
		_ = m.saveLocked()
		empty := len(m.insts) == 0
		for id, sub := range m.subs {
			sub.stop()
			delete(m.subs, id)
		}
		m.mu.Unlock()
		if empty {
			m.removeEmptyLayout()
			m.removeOwnUsers()
		}
	})
	return nil
}

// Apply records spec as the desired state of instance spec.ID (persisted
// before it returns), then lets the loop act. It is idempotent; a change of
// recipe, type or params restarts the instance in its partition; a change
// of epoch only is recorded (a failed instance is retried by any change).
// A new started instance is refused with
// ErrNoFreePartition when every partition is taken.
func (m *Manager) Apply(spec InstanceSpec) error { return m.apply(spec, false) }

// apply is Apply; retry restarts a failed instance even when the spec is
// unchanged.
func (m *Manager) apply(spec InstanceSpec, retry bool) error {
	if spec.ID == "" || len(spec.ID) > 256 || !spec.State.Valid() {
		return fmt.Errorf("%w: id %q, state %q", ErrInvalidSpec, spec.ID, spec.State)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	in, known := m.insts[spec.ID]
	if known && spec.Epoch < in.rec.Epoch {
		return fmt.Errorf("%w: instance %s is at epoch %d, spec has %d", ErrStaleEpoch, spec.ID, in.rec.Epoch, spec.Epoch)
	}
	if !known && spec.State == StateDestroyed {
		return nil
	}
	rc := spec.Recipe
	if rc == nil {
		if !known || in.recipe == nil {
			return fmt.Errorf("%w: instance %s: no recipe", ErrInvalidSpec, spec.ID)
		}
		rc = in.recipe
	}
	st, err := rc.Type(spec.Type)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidSpec, err)
	}
	typ := spec.Type
	if typ == "" {
		typ = rc.DefaultType
	}
	// The software dir and the generation are keyed by the recipe's own
	// CID in one spelling: a CID spelled in another base would install the
	// recipe again elsewhere, and another recipe's CID would share (and
	// skip) that recipe's install.
	rcCID := rc.CID()
	if spec.RecipeCID != "" && spec.State != StateDestroyed {
		if c, err := cid.Decode(spec.RecipeCID); err != nil || !c.Equals(rcCID) {
			return fmt.Errorf("%w: recipe CID %q is not the recipe's (%s)", ErrInvalidSpec, spec.RecipeCID, rcCID)
		}
	}
	cidStr := rcCID.String()
	if !filepath.IsLocal(cidStr) || filepath.Base(cidStr) != cidStr {
		return fmt.Errorf("%w: recipe CID %q", ErrInvalidSpec, cidStr)
	}
	if len(st.Ports) > m.cfg.PortsPerPartition {
		return fmt.Errorf("%w: type %s needs %d ports, partitions have %d", ErrInvalidSpec, typ, len(st.Ports), m.cfg.PortsPerPartition)
	}
	gen, err := genOf(cidStr, typ, spec.Params)
	if err != nil {
		return fmt.Errorf("%w: params: %v", ErrInvalidSpec, err)
	}
	if (!known || in.rec.State != StateStarted) && spec.State == StateStarted && (!known || in.rec.Partition < 0) && m.freeLocked() <= 0 {
		return fmt.Errorf("%w (%d partitions)", ErrNoFreePartition, len(m.slots))
	}
	if !known {
		in = &instance{rec: record{ID: spec.ID, Partition: -1, Phase: PhasePending}}
	}
	prev := in.rec
	in.recipe = rc
	in.rec.Name, in.rec.RecipeCID, in.rec.Type = spec.Name, cidStr, typ
	in.rec.Recipe = rc.Canonical()
	in.rec.Params = spec.Params
	in.rec.State, in.rec.Epoch, in.rec.Requester, in.rec.Gen = spec.State, spec.Epoch, spec.Requester, gen
	unchanged := known && prev.State == in.rec.State && prev.Gen == gen && prev.Epoch == spec.Epoch && prev.Name == spec.Name && prev.Requester == spec.Requester
	if known && in.rec.Phase == PhaseFailed && spec.State == StateStarted && (!unchanged || retry) {
		in.rec.RunGen, in.rec.Error = "", "" // a failed instance asked again: retry it
	} else if unchanged {
		return nil
	}
	m.insts[spec.ID] = in
	if err := m.saveLocked(); err != nil {
		in.rec = prev
		if !known {
			delete(m.insts, spec.ID)
		}
		return fmt.Errorf("partition: persist desired state: %w", err)
	}
	m.refreshLocked(in)
	m.trigger()
	return nil
}

// genOf identifies what runs: recipe CID, software type and params.
func genOf(cidStr, typ string, params map[string]any) (string, error) {
	b, err := stateEnc.Marshal(params)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00", cidStr, typ)
	h.Write(b)
	return hex.EncodeToString(h.Sum(nil)[:16]), nil
}

// Get returns the status of instance id.
func (m *Manager) Get(id string) (InstanceStatus, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	in, ok := m.insts[id]
	if !ok {
		return InstanceStatus{}, false
	}
	return cloneStatus(in.st), true
}

// List returns every instance's status, sorted by ID.
func (m *Manager) List() []InstanceStatus {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]InstanceStatus, 0, len(m.insts))
	for _, in := range m.insts {
		out = append(out, cloneStatus(in.st))
	}
	slices.SortFunc(out, func(a, b InstanceStatus) int {
		if a.ID < b.ID {
			return -1
		}
		if a.ID > b.ID {
			return 1
		}
		return 0
	})
	return out
}

// Free returns the number of partitions available for new instances.
func (m *Manager) Free() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.freeLocked()
}

func (m *Manager) freeLocked() int {
	n := 0
	for _, s := range m.slots {
		if s == "" {
			n++
		}
	}
	for _, in := range m.insts {
		if in.rec.State == StateStarted && in.rec.Partition < 0 {
			n-- // reserved for a pending start
		}
	}
	return max(n, 0)
}

// Sandbox reports which protections confine every partition's processes
// on this node (each true only when a probe saw it take effect).
func (m *Manager) Sandbox() SandboxStatus {
	s := m.sandbox
	s.Reasons = slices.Clone(s.Reasons)
	m.mu.Lock()
	legacy := slices.Sorted(maps.Keys(m.diskLegacy))
	m.mu.Unlock()
	if s.DiskQuota && len(legacy) > 0 {
		s.DiskQuota = false
		s.Reasons = append(s.Reasons, fmt.Sprintf("disk: partitions %v hold files from before the hard limit (no image): metered only until their instance is destroyed", legacy))
	}
	return s
}

// Limits reports what the host enforces on partitions.
func (m *Manager) Limits() Limits {
	l := m.limits
	l.Reasons = slices.Clone(l.Reasons)
	return l
}

// Partitions returns every partition slot with its instance and the
// instance's usage over the last minute.
func (m *Manager) Partitions() []PartitionStatus {
	now := m.cfg.Clock.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]PartitionStatus, len(m.slots))
	for i, id := range m.slots {
		lo, hi := m.portRange(i)
		p := PartitionStatus{Index: i, User: m.users[i].Name, Dir: m.partDir(i), Ports: [2]int{lo, hi},
			State: "free", Promises: []PromiseStatus{}, LimitsEnforced: m.limits.Enforced,
			Usage: PartitionUsage{NetBytes: metering.Unknown, DiskBytes: metering.Unknown}}
		if in, ok := m.insts[id]; ok && id != "" {
			p.InstanceID, p.State, p.Phase = id, string(in.rec.State), string(in.st.Phase)
			p.Promises = slices.Clone(in.st.Promises)
			if in.run != nil && in.run.sb != nil {
				sb := in.run.sb.got
				sb.Rlimits, sb.DiskMetered, sb.DiskQuota, sb.Promises = m.sandbox.Rlimits, m.sandbox.DiskMetered, m.sandbox.DiskQuota && !m.diskLegacy[i], m.sandbox.Promises
				p.Sandbox = &sb
			}
			if s := m.series[id]; s != nil {
				if u, err := metering.Slice(s.samples, now.Add(-time.Minute), now); err == nil {
					p.Usage = PartitionUsage{CPUMs: u.CPUMs, MemAvgBytes: u.MemAvgBytes, MemPeakBytes: u.MemPeakBytes,
						DiskBytes: u.DiskBytes, NetBytes: u.NetBytes}
				}
			}
		}
		out[i] = p
	}
	return out
}

// Usage returns what instance id used in [from, to), for billing slices.
// Samples are kept for Config.Retention, also after the instance is gone.
func (m *Manager) Usage(id string, from, to time.Time) (metering.Usage, error) {
	m.mu.Lock()
	s := m.series[id]
	var samples []metering.Sample
	if s != nil {
		samples = slices.Clone(s.samples)
	}
	m.mu.Unlock()
	if s == nil {
		return metering.Usage{}, fmt.Errorf("%w: %s (no samples)", ErrUnknownInstance, id)
	}
	return metering.Slice(samples, from, to)
}

// Subscribe returns a channel receiving instance status changes and a
// function to unsubscribe. Delivery is lossless per instance: a subscriber
// that falls behind gets each instance's latest status (intermediate
// changes of one instance may be merged), never nothing. The last status of
// a destroyed instance has PhaseDestroyed. The channel closes on Close or
// unsubscribe.
func (m *Manager) Subscribe() (<-chan InstanceStatus, func()) {
	m.mu.Lock()
	defer m.mu.Unlock()
	sub := &subscriber{pending: map[string]InstanceStatus{}, wake: make(chan struct{}, 1),
		out: make(chan InstanceStatus, 16), done: make(chan struct{})}
	if m.closed {
		close(sub.out)
		return sub.out, func() {}
	}
	id := m.nextSub
	m.nextSub++
	m.subs[id] = sub
	go sub.run()
	return sub.out, func() {
		m.mu.Lock()
		defer m.mu.Unlock()
		if s, ok := m.subs[id]; ok {
			s.stop()
			delete(m.subs, id)
		}
	}
}

// subscriber holds each instance's latest undelivered status.
type subscriber struct {
	mu      sync.Mutex
	pending map[string]InstanceStatus
	order   []string
	wake    chan struct{}
	out     chan InstanceStatus
	done    chan struct{}
	once    sync.Once
}

func (s *subscriber) push(st InstanceStatus) {
	s.mu.Lock()
	if _, ok := s.pending[st.ID]; !ok {
		s.order = append(s.order, st.ID)
	}
	s.pending[st.ID] = st
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *subscriber) stop() { s.once.Do(func() { close(s.done) }) }

func (s *subscriber) run() {
	defer close(s.out)
	for {
		select {
		case <-s.done:
			return
		case <-s.wake:
		}
		for {
			s.mu.Lock()
			if len(s.order) == 0 {
				s.mu.Unlock()
				break
			}
			id := s.order[0]
			s.order = s.order[1:]
			st := s.pending[id]
			delete(s.pending, id)
			s.mu.Unlock()
			select {
			case s.out <- st:
			case <-s.done:
				return
			}
		}
	}
}

// emitLocked queues st for every subscriber without blocking.
func (m *Manager) emitLocked(st InstanceStatus) {
	for _, sub := range m.subs {
		sub.push(cloneStatus(st))
	}
}

func (m *Manager) trigger() {
	select {
	case m.kick <- struct{}{}:
	default:
	}
}

// saveLocked persists every instance's record now.
func (m *Manager) saveLocked() error {
	b, seq, err := m.snapshotLocked()
	if err != nil {
		return err
	}
	return m.writeSnapshot(b, seq)
}

// writeSnapshot writes snapshot seq unless a newer one is already written.
func (m *Manager) writeSnapshot(b []byte, seq uint64) error {
	m.writeMu.Lock()
	defer m.writeMu.Unlock()
	if seq <= m.written {
		return nil
	}
	if err := writeStateBytes(m.statePath, b); err != nil {
		return err
	}
	m.written = seq
	return nil
}

// flushLoop writes the state file after changes marked by persistLocked,
// coalescing bursts into one write.
func (m *Manager) flushLoop() {
	defer m.loops.Done()
	for {
		select {
		case <-m.ctx.Done():
			return
		case <-m.dirty:
		}
		m.mu.Lock()
		b, seq, err := m.snapshotLocked()
		m.mu.Unlock()
		if err == nil {
			err = m.writeSnapshot(b, seq)
		}
		if err != nil {
			m.cfg.Log.Error("partition: persist state", "err", err)
		}
	}
}

// snapshotLocked encodes every instance's record and numbers the snapshot.
func (m *Manager) snapshotLocked() ([]byte, uint64, error) {
	st := &stateFile{Version: stateVersion}
	ids := make([]string, 0, len(m.insts))
	for id := range m.insts {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		st.Instances = append(st.Instances, m.insts[id].rec)
	}
	b, err := encodeState(st)
	m.seq++
	return b, m.seq, err
}

// persistLocked schedules a write of the state file (within milliseconds).
// Before the flusher runs (Start) and after Close, it writes at once.
func (m *Manager) persistLocked() {
	if m.ctx == nil || m.ctx.Err() != nil {
		if err := m.saveLocked(); err != nil {
			m.cfg.Log.Error("partition: persist state", "err", err)
		}
		return
	}
	select {
	case m.dirty <- struct{}{}:
	default:
	}
}

// baseStatus derives the status fields that come from the record.
func (m *Manager) baseStatus(in *instance) InstanceStatus {
	r := in.rec
	st := in.st
	st.ID, st.Name, st.RecipeCID, st.Type, st.Requester = r.ID, r.Name, r.RecipeCID, r.Type, r.Requester
	st.Epoch, st.State, st.Phase, st.Partition = r.Epoch, r.State, r.Phase, r.Partition
	st.Ports = r.Ports
	st.ResultCID = r.ResultCID
	if r.Error != "" {
		st.Error = r.Error
	}
	if st.Promises == nil {
		st.Promises = []PromiseStatus{}
	}
	if st.Processes == nil {
		st.Processes = []ProcessStatus{}
	}
	if in.recipe != nil {
		if t, err := in.recipe.Type(r.Type); err == nil {
			st.Batch = t.Batch
		}
	}
	if r.StartedNs != 0 {
		st.StartedAt = time.Unix(0, r.StartedNs).UTC()
	}
	if st.Phase == PhaseCompleted && r.Partition >= 0 {
		st.ResultDir = filepath.Join(m.partDir(r.Partition), "out")
	}
	return st
}

// refreshLocked recomputes in's status from its record and run, and emits it.
func (m *Manager) refreshLocked(in *instance) {
	st := m.baseStatus(in)
	if rs := in.run; rs != nil {
		st.Processes = make([]ProcessStatus, len(rs.procs))
		for i, p := range rs.procs {
			st.Processes[i] = ProcessStatus{Name: p.name, PID: p.pid, Running: p.running, Restarts: p.restarts,
				LastExit: p.lastExit, Log: p.log, Adopted: p.adopted}
		}
		st.Promises = append([]PromiseStatus{}, rs.promises...)
		st.Healthy = rs.healthy
		st.Connection = rs.connection
		st.ReadyAt = rs.readyAt
	} else {
		st.Processes = []ProcessStatus{}
		st.Healthy = false
	}
	if in.rec.Error == "" && st.Phase != PhasePending {
		st.Error = ""
	}
	st.Stale = in.rec.State == StateStarted && in.rec.RunGen != "" && in.rec.RunGen != in.rec.Gen
	st.UpdatedAt = m.cfg.Clock.Now().UTC()
	in.st = st
	m.emitLocked(st)
}

func cloneStatus(s InstanceStatus) InstanceStatus {
	s.Promises = slices.Clone(s.Promises)
	s.Processes = slices.Clone(s.Processes)
	if s.Ports != nil {
		p := make(map[string]int, len(s.Ports))
		for k, v := range s.Ports {
			p[k] = v
		}
		s.Ports = p
	}
	if s.Connection != nil {
		c := make(map[string]string, len(s.Connection))
		for k, v := range s.Connection {
			c[k] = v
		}
		s.Connection = c
	}
	return s
}

func (m *Manager) partDir(i int) string { return filepath.Join(m.dir, strconv.Itoa(i)) }

func (m *Manager) portRange(i int) (lo, hi int) {
	lo = m.cfg.PortBase + i*m.cfg.PortsPerPartition
	return lo, lo + m.cfg.PortsPerPartition - 1
}

// reconcileLoop drives actual state towards desired state.
func (m *Manager) reconcileLoop() {
	defer m.loops.Done()
	t := m.cfg.Clock.NewTicker(m.cfg.ReconcileInterval)
	defer t.Stop()
	for {
		select {
		case <-m.ctx.Done():
			return
		case <-m.kick:
		case <-t.C():
		}
		m.reconcileOnce()
	}
}

func (m *Manager) reconcileOnce() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.ctx.Err() != nil {
		return
	}
	var des []Desired
	var act []Actual
	for id, in := range m.insts {
		des = append(des, Desired{ID: id, State: in.rec.State, Gen: in.rec.Gen})
		act = append(act, Actual{ID: id, Partition: in.rec.Partition, Phase: in.rec.Phase, Gen: in.rec.RunGen, Busy: in.busy})
	}
	free := 0
	for _, s := range m.slots {
		if s == "" {
			free++
		}
	}
	for _, a := range Reconcile(des, act, free) {
		in := m.insts[a.ID]
		switch a.Kind {
		case ActWait:
			if in.st.Error != a.Reason {
				in.st.Error = a.Reason
				m.emitLocked(in.st)
			}
			continue
		case ActForget:
			delete(m.insts, a.ID)
			m.persistLocked()
			in.st.Phase = PhaseDestroyed
			in.st.UpdatedAt = m.cfg.Clock.Now().UTC()
			m.emitLocked(in.st)
			continue
		}
		in.busy = true
		m.ops.Add(1)
		go func(a Action, in *instance) {
			defer m.ops.Done()
			m.do(a, in)
			m.mu.Lock()
			in.busy = false
			m.mu.Unlock()
			m.trigger()
		}(a, in)
	}
}

// killGroup signals the process group led by pid (and pid itself).
func killGroup(pid int, sig syscall.Signal) {
	if pid <= 0 {
		return
	}
	_ = syscall.Kill(-pid, sig)
	_ = syscall.Kill(pid, sig)
}

// SetState changes only the requested state of a known instance (keeping
// its recipe, type, params and epoch), persisted before it returns.
// Setting started on a failed instance retries it.
func (m *Manager) SetState(id string, s State) error {
	if !s.Valid() {
		return fmt.Errorf("%w: state %q", ErrInvalidSpec, s)
	}
	m.mu.Lock()
	in, ok := m.insts[id]
	if !ok {
		m.mu.Unlock()
		if s == StateDestroyed {
			return nil
		}
		return fmt.Errorf("%w: %s", ErrUnknownInstance, id)
	}
	spec := InstanceSpec{ID: id, Name: in.rec.Name, RecipeCID: in.rec.RecipeCID, Recipe: in.recipe,
		Type: in.rec.Type, Params: in.rec.Params, State: s, Epoch: in.rec.Epoch, Requester: in.rec.Requester}
	m.mu.Unlock()
	return m.apply(spec, s == StateStarted)
}
