package schedrun

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/pbnjay/memory"

	"github.com/weftgrid/weft/partition"
	"github.com/weftgrid/weft/recipes"
	"github.com/weftgrid/weft/recipes/store"
	"github.com/weftgrid/weft/scheduler"
)

// Runtime is what the market's runner needs of the partitions
// subsystem (*partition.Manager).
type Runtime interface {
	Apply(spec partition.InstanceSpec) error
	Get(id string) (partition.InstanceStatus, bool)
	Free() int
}

var _ Runtime = (*partition.Manager)(nil)

// Content is what the market needs of the recipes subsystem: the
// content store, the grid fetch and the provider announcements.
type Content struct {
	// Store is the node's content store.
	Store *store.Store
	// Fetch makes content local, from hinted peers first, then the grid.
	Fetch func(ctx context.Context, c cid.Cid, hints ...peer.ID) error
	// Announce records content as provided by this node (nil: no-op).
	Announce func(c cid.Cid)
}

// Recipe returns the recipe c, fetched from the grid (hinted peers first)
// when it is not in the local store.
func (mc Content) Recipe(ctx context.Context, c cid.Cid, hints ...peer.ID) (*recipes.Recipe, error) {
	if c.Prefix().Codec != cid.DagCBOR {
		return nil, fmt.Errorf("market: %s is not a recipe CID", c)
	}
	if err := mc.Fetch(ctx, c, hints...); err != nil {
		return nil, fmt.Errorf("market: fetch recipe %s: %w", c, err)
	}
	return mc.Store.Recipe(c)
}

// PutRecipe stores a recipe and announces it.
func (mc Content) PutRecipe(r *recipes.Recipe) (cid.Cid, error) {
	c, err := mc.Store.PutRecipe(r)
	if err == nil && mc.Announce != nil {
		mc.Announce(c)
	}
	return c, err
}

// PutDir stores a directory tree, announces it and returns its CID.
func (mc Content) PutDir(ctx context.Context, dir string) (string, error) {
	c, err := mc.Store.PutDir(dir)
	if err != nil {
		return "", err
	}
	if mc.Announce != nil {
		mc.Announce(c)
	}
	return c.String(), nil
}

// FetchDir makes the tree c local (from hinted peers first) and writes it to out.
func (mc Content) FetchDir(ctx context.Context, c cid.Cid, out string, hints ...peer.ID) error {
	if err := mc.Fetch(ctx, c, hints...); err != nil {
		return err
	}
	return mc.Store.GetDir(ctx, c, out)
}

// Runner is the market's Runner over the partition manager: it
// resolves the recipe by CID (fetching it from the requester or the grid),
// validates the parameters, and translates specs and statuses.
//
// Status is called on the market's state loop, so it does no I/O: what
// needs some — storing a completed batch's output directory when the
// manager did not, reading the last log lines of a failed run for its
// reason — runs once per run on a goroutine of its own, and Status reports
// its outcome when it is there (the result as pending "storing the result"
// until then; the failure as the last status reported until its log lines
// are read, so that the failure is reported once, whole).
type Runner struct {
	parts   Runtime
	content Content
	total   scheduler.Resources

	mu      sync.Mutex
	results map[string]*effect             // instance ID → storing a run's output directory (when the manager did not)
	tails   map[string]*effect             // instance ID → reading a failed run's last log lines
	last    map[string]scheduler.RunStatus // instance ID → what Status reported last
}

// effect is I/O Status asked for, done off the market's loop, for one run
// of an instance (key).
type effect struct {
	key  runKey
	done bool
	val  string // the result CID, or the log lines
	err  error
}

// runKey identifies one run of an instance (when it started) and its end
// (the output directory of a completed batch; the failed process and the
// reason of a failure).
type runKey struct {
	started time.Time
	end     string
}

var _ scheduler.Runner = (*Runner)(nil)

// NewRunner returns the market's Runner over parts and content; the
// node's capacity is measured once (NodeCapacity of dataDir).
func NewRunner(parts Runtime, content Content, dataDir string) *Runner {
	return &Runner{parts: parts, content: content, total: NodeCapacity(dataDir)}
}

// NodeCapacity is what the node offers: all CPUs, total memory and the
// free space of the data dir.
func NodeCapacity(dataDir string) scheduler.Resources {
	r := scheduler.Resources{CPUMillis: int64(runtime.NumCPU()) * 1000, MemoryBytes: int64(memory.TotalMemory())}
	var st syscall.Statfs_t
	if syscall.Statfs(dataDir, &st) == nil {
		r.DiskBytes = int64(st.Bavail) * int64(st.Bsize)
	}
	return r
}

// Apply makes the instance converge to spec.
func (r *Runner) Apply(ctx context.Context, spec scheduler.InstanceSpec) error {
	ps := partition.InstanceSpec{
		ID: string(spec.Instance), Name: spec.Name, RecipeCID: spec.RecipeCID, Type: spec.SoftwareType,
		State: partitionState(spec.State), Epoch: spec.Epoch, Requester: spec.Requester.String(),
	}
	if spec.State != scheduler.StateDestroyed {
		c, err := cid.Decode(spec.RecipeCID)
		if err != nil {
			return fmt.Errorf("market: recipe CID %q: %w", spec.RecipeCID, err)
		}
		rc, err := r.content.Recipe(ctx, c, spec.Requester)
		if err != nil {
			return err
		}
		params, err := rc.ValidateParams(spec.SoftwareType, spec.Params)
		if err != nil {
			return err
		}
		ps.Recipe, ps.Params = rc, params
	}
	return r.parts.Apply(ps)
}

func partitionState(s scheduler.State) partition.State {
	switch s {
	case scheduler.StateStopped:
		return partition.StateStopped
	case scheduler.StateDestroyed:
		return partition.StateDestroyed
	}
	return partition.StateStarted
}

// Status translates the partition's phase into the market's state.
func (r *Runner) Status(id scheduler.InstanceID) (scheduler.RunStatus, bool) {
	st, ok := r.parts.Get(string(id))
	r.mu.Lock()
	defer r.mu.Unlock()
	if !ok {
		r.forgetLocked(string(id))
		return scheduler.RunStatus{}, false
	}
	rs, ok := r.statusLocked(st)
	if !ok { // held until the failure's log lines are read
		if last, seen := r.last[st.ID]; seen {
			return last, true
		}
	}
	if r.last == nil {
		r.last = map[string]scheduler.RunStatus{}
	}
	r.last[st.ID] = rs
	return rs, true
}

// forgetLocked drops what the runner keeps of an instance the manager no
// longer has.
func (r *Runner) forgetLocked(id string) {
	delete(r.last, id)
	delete(r.results, id)
	delete(r.tails, id)
}

// statusLocked translates st; false when the status is not complete yet
// (a failure whose log lines are being read).
func (r *Runner) statusLocked(st partition.InstanceStatus) (scheduler.RunStatus, bool) {
	rs := scheduler.RunStatus{State: scheduler.StatePending, Connection: st.Connection, Reason: st.Error}
	rs.Health, rs.Restarts, rs.LastExit = health(st)
	complete := true
	if st.Stale {
		rs.Reason = "applying an update (restarting with the new recipe, type or parameters)"
		return rs, true
	}
	switch st.Phase {
	case partition.PhaseRunning:
		if !st.Batch {
			rs.State = scheduler.StateStarted
		} else {
			rs.Reason = "running"
		}
	case partition.PhaseStopped:
		rs.State = scheduler.StateStopped
		if st.State == partition.StateStarted {
			rs.State = scheduler.StatePending
		}
	case partition.PhaseFailed:
		rs.State = scheduler.StateFailed
		tail, done := r.logTailLocked(st)
		if tail != "" {
			rs.Reason += "; last log lines: " + tail
		}
		complete = done
	case partition.PhaseDestroyed:
		rs.State = scheduler.StateDestroyed
	case partition.PhaseCompleted:
		res, err := r.resultLocked(st)
		switch {
		case res != "":
			rs.State, rs.Result, rs.Reason = scheduler.StateDone, res, ""
		case err != nil:
			// The output cannot be stored (not a regular file, too many
			// entries, no space): report it, the requester would
			// otherwise wait for a result that never comes.
			rs.State, rs.Reason = scheduler.StateFailed, "storing the result: "+err.Error()
		default:
			rs.Reason = "storing the result"
		}
	default:
		if rs.Reason == "" {
			rs.Reason = string(st.Phase)
		}
	}
	return rs, complete
}

// resultLocked is a completed batch instance's result CID: the manager's,
// or the output directory stored by the runner ("" while it is being
// stored). It returns an error when the output directory cannot be stored.
func (r *Runner) resultLocked(st partition.InstanceStatus) (string, error) {
	if st.ResultCID != "" {
		return st.ResultCID, nil
	}
	if st.ResultDir == "" {
		return "", nil
	}
	dir := st.ResultDir
	e := r.effectLocked(&r.results, st.ID, runKey{st.StartedAt, dir}, func() (string, error) {
		if _, err := os.Stat(dir); err != nil {
			return "", err
		}
		return r.content.PutDir(context.Background(), dir)
	})
	return e.val, e.err
}

// effectLocked returns the effect of instance id's run key in m, starting
// do on a goroutine of its own when that run has none yet.
func (r *Runner) effectLocked(m *map[string]*effect, id string, key runKey, do func() (string, error)) effect {
	if e := (*m)[id]; e != nil && e.key == key {
		return *e
	}
	if *m == nil {
		*m = map[string]*effect{}
	}
	e := &effect{key: key}
	(*m)[id] = e
	go func() {
		val, err := do()
		r.mu.Lock()
		e.val, e.err, e.done = val, err, true
		r.mu.Unlock()
	}()
	return *e
}

// Capacity returns the node's resources and free partitions (the market
// subtracts what the instances it hosts reserve).
func (r *Runner) Capacity() (total, free scheduler.Resources, freePartitions int) {
	return r.total, r.total, r.parts.Free()
}

// health judges an instance on this host: failing when it failed, when an
// anomaly promise fails, or when a process is down between restarts while
// it should run; ok when it runs with its promises passing; unknown
// otherwise (installing, starting, stopped, done). It also sums the
// processes' restarts and returns the latest exit described.
func health(st partition.InstanceStatus) (scheduler.Health, uint32, string) {
	var restarts uint32
	var lastExit string
	down := false
	for _, p := range st.Processes {
		restarts += uint32(max(p.Restarts, 0))
		if p.LastExit != "" {
			lastExit = p.Name + ": " + p.LastExit
		}
		down = down || !p.Running
	}
	switch {
	case st.Phase == partition.PhaseFailed:
		return scheduler.HealthFailing, restarts, lastExit
	case st.Phase != partition.PhaseRunning:
		return scheduler.HealthUnknown, restarts, lastExit
	case !st.Healthy || (down && !st.Batch):
		return scheduler.HealthFailing, restarts, lastExit
	}
	return scheduler.HealthOK, restarts, lastExit
}

// logOpener is the part of the partition manager that opens a process log
// safely (from the partition's log directory descriptor, no symlink
// followed).
type logOpener interface {
	OpenLog(id, name string) (*os.File, error)
}

// logTailLocked is the last lines of the log of the process that failed
// (the last to exit), for the failure's reason: what the requester sees.
// done is false while they are being read.
func (r *Runner) logTailLocked(st partition.InstanceStatus) (tail string, done bool) {
	lo, ok := r.parts.(logOpener)
	if !ok || len(st.Processes) == 0 {
		return "", true
	}
	name := st.Processes[0].Name
	for _, p := range st.Processes {
		if p.LastExit != "" {
			name = p.Name
		}
	}
	id := st.ID
	e := r.effectLocked(&r.tails, id, runKey{st.StartedAt, name + "\x00" + st.Error}, func() (string, error) {
		f, err := lo.OpenLog(id, name)
		if err != nil {
			return "", nil
		}
		defer f.Close()
		return tailLines(f, 3), nil
	})
	return e.val, e.done
}

// tailLines returns the last n non-empty lines of f (read from its last
// 2 KiB), joined by " | ", with anything that is not printable replaced,
// at most 300 bytes: tenant output goes into a reason shown on terminals.
func tailLines(f *os.File, n int) string {
	const window = 2048
	fi, err := f.Stat()
	if err != nil {
		return ""
	}
	off := max(fi.Size()-window, 0)
	buf := make([]byte, fi.Size()-off)
	k, _ := f.ReadAt(buf, off)
	lines := strings.Split(string(buf[:k]), "\n")
	if off > 0 && len(lines) > 0 {
		lines = lines[1:] // a partial first line
	}
	var keep []string
	for i := len(lines) - 1; i >= 0 && len(keep) < n; i-- {
		l := strings.Map(func(c rune) rune {
			if c == utf8.RuneError || !unicode.IsPrint(c) {
				return '?'
			}
			return c
		}, strings.TrimSpace(lines[i]))
		if l != "" {
			keep = append([]string{l}, keep...)
		}
	}
	s := strings.Join(keep, " | ")
	if len(s) > 300 {
		s = s[len(s)-300:]
		for len(s) > 0 && !utf8.RuneStart(s[0]) {
			s = s[1:]
		}
	}
	return s
}
