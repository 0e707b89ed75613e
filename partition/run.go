package partition

import (
	"context"
	"errors"

	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/weftgrid/weft/recipes"
	"github.com/weftgrid/weft/recipes/safefs"
)

// runState is one run of an instance's processes in its partition.
type runState struct {
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // supervisors, promise loop, batch timer

	idx      int
	acct     account
	sb       *sandbox // nil only before openRunSandbox
	disk     int64    // the type's disk resource in bytes (0: none)
	batch    bool
	env      []string
	rendered *recipes.Rendered
	procs    []*proc

	timedOut atomic.Bool
	// timeout is closed when a batch run times out (it ends back-offs).
	timeout chan struct{}
	// launchMu orders launches with stopRun and the batch timeout: a
	// process is either registered (pid, exited) before they look, or not
	// started at all once the run is cancelled or timed out.
	launchMu sync.Mutex
	// launched is closed once every process was started (or failed to
	// start) for the first time; readiness is judged only after.
	launched chan struct{}
	toLaunch atomic.Int32

	// Guarded by Manager.mu.
	promises   []PromiseStatus
	healthy    bool
	connection map[string]string
	readyAt    time.Time
	finished   int
	failMsg    string
}

// proc is one supervised process of a run.
type proc struct {
	name string
	spec recipes.Process
	log  string

	// Guarded by Manager.mu.
	pid      int
	start    uint64
	running  bool
	restarts int
	lastExit string
	exitOK   bool
	adopted  bool
	exited   chan struct{} // closed when the current OS process is gone
	// settled: the current OS process is gone and its group was killed
	// after it; its pid may belong to another process by now.
	settled bool
}

// do carries out one reconcile action.
func (m *Manager) do(a Action, in *instance) {
	switch a.Kind {
	case ActStart:
		m.startInstance(in)
	case ActRestart:
		m.stopInstance(in, PhasePending)
		m.startInstance(in)
	case ActStop:
		m.stopInstance(in, PhaseStopped)
	case ActDestroy:
		m.destroyInstance(in)
	}
}

// fail records why in cannot run; the loop leaves it alone until its spec
// changes.
func (m *Manager) fail(in *instance, gen string, err error) {
	m.cfg.Log.Warn("partition: instance failed", "instance", in.rec.ID, "err", err)
	m.mu.Lock()
	defer m.mu.Unlock()
	in.rec.Phase, in.rec.RunGen, in.rec.Error = PhaseFailed, gen, err.Error()
	m.persistLocked()
	m.refreshLocked(in)
}

// startInstance allocates a partition if needed, installs the recipe,
// writes the instance's files and starts its processes and promises.
func (m *Manager) startInstance(in *instance) {
	m.mu.Lock()
	gen, rc, typ, cid := in.rec.Gen, in.recipe, in.rec.Type, in.rec.RecipeCID
	if in.rec.Partition < 0 {
		idx := slices.Index(m.slots, "")
		if idx < 0 {
			in.st.Error = "no free partition"
			m.mu.Unlock()
			return
		}
		m.slots[idx] = in.rec.ID
		in.rec.Partition = idx
	}
	idx := in.rec.Partition
	in.rec.Phase, in.rec.Error, in.rec.Procs = PhaseInstalling, "", nil
	rec := in.rec // what this start runs: Apply may change in.rec meanwhile
	m.persistLocked()
	m.refreshLocked(in)
	m.mu.Unlock()

	t, err := rc.Type(typ)
	if err != nil {
		m.fail(in, gen, err)
		return
	}
	if err := m.ensureLayout(); err != nil {
		m.fail(in, gen, err)
		return
	}
	if err := m.preparePartition(idx, t.Resources); err != nil {
		m.fail(in, gen, err)
		return
	}
	soft, err := m.install(m.ctx, cid, rc)
	if err != nil {
		m.fail(in, gen, err)
		return
	}
	rs, ports, err := m.newRun(rec, rc, idx, soft, t)
	if err != nil {
		m.fail(in, gen, err)
		return
	}
	if err := m.openRunSandbox(rs, soft); err != nil {
		rs.cancel()
		m.fail(in, gen, err)
		return
	}
	if err := m.writeFiles(m.ctx, m.partDir(idx), rs.rendered.Files, m.users[idx]); err != nil {
		m.fail(in, gen, err)
		return
	}
	if t.Batch {
		out := filepath.Join(m.partDir(idx), "out")
		_ = safefs.RemoveAll(out)
		if err := mkdirSafe(m.dir, out, m.users[idx]); err != nil {
			m.fail(in, gen, err)
			return
		}
	}
	m.mu.Lock()
	if m.ctx.Err() != nil {
		m.mu.Unlock()
		return
	}
	in.run = rs
	in.rec.Phase, in.rec.RunGen, in.rec.Ports = PhaseStarting, gen, ports
	in.rec.StartedNs = m.cfg.Clock.Now().UnixNano()
	in.rec.ResultCID = ""
	m.persistLocked()
	m.refreshLocked(in)
	m.mu.Unlock()
	m.runProcs(in, rs, nil, t)
}

// runProcs starts the supervisors (adopting recs' processes when given),
// the promise loop and, for batch types, the timeout.
func (m *Manager) runProcs(in *instance, rs *runState, adopt map[string]procRecord, t *recipes.SoftwareType) {
	m.ensureSeries(in.rec.ID)
	for _, p := range rs.procs {
		rs.wg.Add(1)
		r, ok := adopt[p.name]
		go m.supervise(in, rs, p, r, ok)
	}
	m.sampleIDs([]string{in.rec.ID}, true)
	rs.wg.Add(1)
	go m.promiseLoop(in, rs)
	if t.Batch && t.Timeout > 0 {
		rs.wg.Add(1)
		go func() {
			defer rs.wg.Done()
			timer := m.cfg.Clock.NewTimer(t.Timeout.D())
			defer timer.Stop()
			select {
			case <-timer.C():
				m.abortRun(rs, "batch timeout after "+t.Timeout.String())
			case <-rs.ctx.Done():
			}
		}()
	}
}

// abortRun ends rs for good with reason (unless it already has one): no
// process starts or restarts after it, and every running one is killed,
// so the run fails with that reason.
func (m *Manager) abortRun(rs *runState, reason string) {
	m.mu.Lock()
	if rs.failMsg == "" {
		rs.failMsg = reason
	}
	m.mu.Unlock()
	rs.launchMu.Lock() // no launch after this: see launch
	if !rs.timedOut.Swap(true) {
		close(rs.timeout)
	}
	m.mu.Lock()
	pids := rs.pidsLocked()
	m.mu.Unlock()
	rs.launchMu.Unlock()
	for _, pid := range pids {
		killGroup(pid, syscall.SIGKILL)
	}
}

// checkDisk fails rs when its partition holds more than its disk
// resource (used: bytes measured, -1 when unknown) or, with the hard
// limit, when its file system is full (a write hit ENOSPC).
func (m *Manager) checkDisk(rs *runState, used int64) bool {
	if rs.disk <= 0 {
		return false
	}
	if used > rs.disk {
		m.abortRun(rs, fmt.Sprintf("%v: the partition holds %d bytes, its disk resource is %d", errDiskQuota, used, rs.disk))
		return true
	}
	if m.sandbox.DiskQuota && imageFull(m.partDir(rs.idx)) {
		m.abortRun(rs, fmt.Sprintf("%v: the partition's file system (its disk resource, %d bytes) is full", errDiskQuota, rs.disk))
		return true
	}
	return false
}

// errDiskQuota is the reason an instance over its disk resource fails.
var errDiskQuota = errors.New("disk quota exceeded")

func (rs *runState) pidsLocked() []int {
	var out []int
	for _, p := range rs.procs {
		if p.running && p.pid > 0 {
			out = append(out, p.pid)
		}
	}
	return out
}

// preparePartition creates the partition's directories (owned by its user,
// mode 0700) and cgroup.
func (m *Manager) preparePartition(idx int, res recipes.Resources) error {
	m.killPartition(idx) // nothing of an earlier run or tenant may run while its files are written
	dir := m.partDir(idx)
	acct := m.users[idx]
	if err := mkdirSafe(m.dir, dir, acct); err != nil {
		return err
	}
	mounted := false
	if m.sandbox.DiskQuota && res.DiskBytes > 0 {
		// The hard limit: dir becomes the root of the partition's image.
		err := m.disk.ensure(idx, dir, int64(res.DiskBytes), acct)
		m.mu.Lock()
		if errors.Is(err, errDiskLegacy) {
			if m.diskLegacy == nil {
				m.diskLegacy = map[int]bool{}
			}
			m.diskLegacy[idx] = true
		} else {
			delete(m.diskLegacy, idx)
		}
		m.mu.Unlock()
		switch {
		case errors.Is(err, errDiskLegacy):
			m.cfg.Log.Warn("partition: no hard disk limit for this instance (its files predate it); metered until it is destroyed", "partition", idx)
		case err != nil:
			return err
		default:
			mounted = true
		}
	}
	if mounted && acct.set() {
		if err := os.Lchown(dir, acct.UID, acct.GID); err != nil {
			return m.unmountFailed(dir, err)
		}
	}
	for _, d := range []string{filepath.Join(dir, "tmp"), filepath.Join(dir, "log")} {
		if err := mkdirSafe(m.dir, d, acct); err != nil {
			return m.unmountFailed(dir, err)
		}
	}
	if err := os.Chmod(dir, 0o700); err != nil { // dir itself was checked by mkdirSafe
		return m.unmountFailed(dir, err)
	}
	if err := m.cg.create(idx, res.CPUMillis, int64(res.MemoryBytes), m.cfg.PidsMax); err != nil {
		err = fmt.Errorf("partition: cgroup of partition %d: %w", idx, err)
		if mounted {
			return m.unmountFailed(dir, err)
		}
		return err
	}
	return nil
}

// unmountFailed unmounts the image of a partition whose start failed (it
// is mounted again at the next start) and returns err.
func (m *Manager) unmountFailed(dir string, err error) error {
	if os.Geteuid() == 0 {
		if uerr := unmount(dir); uerr != nil {
			m.cfg.Log.Warn("partition: unmount after a failed start", "dir", dir, "err", uerr)
		}
	}
	return err
}

// newRun renders the software type for the instance in partition idx.
// rec and rc are a snapshot of the instance's record and recipe.
func (m *Manager) newRun(rec record, rc *recipes.Recipe, idx int, soft string, t *recipes.SoftwareType) (*runState, map[string]int, error) {
	dir := m.partDir(idx)
	lo, _ := m.portRange(idx)
	ports := make(map[string]int, len(t.Ports))
	for i, name := range t.Ports {
		ports[name] = lo + i
	}
	id, typ := rec.ID, rec.Type
	params := withDefaults(rec.Params, rc, t)
	tctx := recipes.TemplateContext{
		Params: params,
		Partition: recipes.PartitionInfo{ID: idx, Dir: dir, Tmp: filepath.Join(dir, "tmp"),
			Out: filepath.Join(dir, "out"), Software: soft},
		Ports: ports, Host: m.cfg.Host, Weft: m.weft, Node: recipes.NodeInfo{PeerID: m.cfg.PeerID},
		Instance: id, Type: typ,
	}
	rendered, err := t.Render(tctx)
	if err != nil {
		return nil, nil, err
	}
	acct := m.users[idx]
	env := []string{
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"HOME=" + dir, "TMPDIR=" + tctx.Partition.Tmp, "LANG=C.UTF-8",
		"WEFT_PARTITION=" + strconv.Itoa(idx), "WEFT_INSTANCE=" + id,
		"WEFT_OUT=" + tctx.Partition.Out, "WEFT_SOFTWARE=" + soft,
	}
	if acct.set() {
		env = append(env, "USER="+acct.Name, "LOGNAME="+acct.Name)
	}
	ctx, cancel := context.WithCancel(m.ctx)
	rs := &runState{ctx: ctx, cancel: cancel, idx: idx, acct: acct, batch: t.Batch, env: env, disk: int64(t.Resources.DiskBytes),
		rendered: rendered, connection: rendered.Connection, launched: make(chan struct{}),
		timeout: make(chan struct{})}
	for _, p := range rendered.Processes {
		if p.Dir == "" {
			p.Dir = dir
		}
		if p.Restart == "" {
			p.Restart = recipes.RestartAlways
			if t.Batch {
				p.Restart = recipes.RestartNever
			}
		}
		rs.procs = append(rs.procs, &proc{name: p.Name, spec: p, log: filepath.Join(dir, "log", p.Name+".log")})
	}
	rs.toLaunch.Store(int32(len(rs.procs)))
	if len(rs.procs) == 0 {
		close(rs.launched)
	}
	for _, pr := range rendered.Promises {
		rs.promises = append(rs.promises, PromiseStatus{Name: pr.Name, Kind: string(pr.Kind)})
	}
	return rs, ports, nil
}

// supervise runs one process until the run is cancelled or the process
// exits for good, restarting it with exponential back-off per its policy.
func (m *Manager) supervise(in *instance, rs *runState, p *proc, adoptRec procRecord, adopt bool) {
	defer rs.wg.Done()
	backoff := m.cfg.RestartBackoff
	quick := 0 // crashes in a row of runs shorter than 10 s
	for first := true; ; first = false {
		began := m.cfg.Clock.Now()
		var exited chan struct{}
		var err error
		if first && adopt {
			exited = m.watchAdopted(in, rs, p, adoptRec)
		} else {
			exited, err = m.launch(in, rs, p)
		}
		if first && rs.toLaunch.Add(-1) == 0 {
			close(rs.launched)
		}
		if errors.Is(err, errRunStopped) {
			return
		}
		ok, msg := false, ""
		if err != nil {
			msg = err.Error()
			m.mu.Lock()
			p.lastExit, p.exitOK = msg, false
			m.refreshLocked(in)
			m.mu.Unlock()
		} else {
			select {
			case <-exited:
			case <-rs.ctx.Done():
				return
			}
			m.mu.Lock()
			ok, msg = p.exitOK, p.lastExit
			pid := p.pid
			m.mu.Unlock()
			killGroup(pid, syscall.SIGKILL) // what the leader left behind
			m.mu.Lock()
			p.settled = true // stopRun no longer signals that pid
			m.mu.Unlock()
			m.sampleIDs([]string{in.rec.ID}, false)
		}
		if rs.ctx.Err() != nil {
			return
		}
		restart := p.spec.Restart == recipes.RestartAlways || (p.spec.Restart == recipes.RestartOnFailure && !ok)
		if !restart || rs.timedOut.Load() {
			m.procFinished(in, rs, p, ok && !rs.timedOut.Load(), msg)
			return
		}
		if m.cfg.Clock.Now().Sub(began) >= 10*time.Second {
			backoff = m.cfg.RestartBackoff // it ran long enough: start over
			quick = 0
		} else {
			quick++
		}
		if b := m.cfg.RestartBudget; b > 0 && quick > b {
			m.cfg.Log.Warn("partition: process keeps crashing; restart budget exhausted", "instance", in.rec.ID, "process", p.name, "exit", msg, "crashes", quick)
			// The whole run fails: its other processes are killed too.
			m.abortRun(rs, fmt.Sprintf("process %s: %s (crashed %d times in a row: restart budget exhausted)", p.name, msg, quick))
			m.procFinished(in, rs, p, false, msg)
			return
		}
		m.cfg.Log.Info("partition: process exited; restarting", "instance", in.rec.ID, "process", p.name,
			"exit", msg, "backoff", backoff)
		select {
		case <-m.cfg.Clock.After(backoff):
		case <-rs.timeout:
		case <-rs.ctx.Done():
			return
		}
		if rs.timedOut.Load() { // the batch timed out while waiting: no new run
			m.procFinished(in, rs, p, false, msg)
			return
		}
		backoff = min(backoff*2, m.cfg.RestartBackoffMax)
		m.mu.Lock()
		p.restarts++
		m.mu.Unlock()
	}
}

// launch starts p's OS process in its own process group, as the partition's
// user, in its cgroup, with rlimits, writing to its log file.
func (m *Manager) launch(in *instance, rs *runState, p *proc) (chan struct{}, error) {
	if testHookLaunch != nil {
		testHookLaunch(rs)
	}
	rs.launchMu.Lock()
	defer rs.launchMu.Unlock()
	if rs.ctx.Err() != nil {
		return nil, errRunStopped
	}
	if rs.timedOut.Load() {
		return nil, fmt.Errorf("start %s: the run was ended (timeout or disk quota)", p.name)
	}
	logf, err := openLogFile(m.dir, p.log)
	if err != nil {
		return nil, fmt.Errorf("partition: log: %w", err)
	}
	if rs.acct.set() {
		_ = logf.Chown(rs.acct.UID, rs.acct.GID)
	}
	fmt.Fprintf(logf, "--- weft: starting %s at %s\n", p.name, m.cfg.Clock.Now().UTC().Format(time.RFC3339))
	env := append(slices.Clone(rs.env), sortedEnv(p.spec.Env)...)
	target := lookPath(p.spec.Command, env)
	if _, err := exec.LookPath(target); err != nil {
		// Said here, as exec would, rather than by the gate's shell.
		fmt.Fprintf(logf, "--- weft: cannot start %s: %v\n", p.name, err)
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", p.name, err)
	}
	cmd, err := m.spawn(spawnSpec{sb: rs.sb, acct: rs.acct, cgroup: partCgroup(rs.idx), nofile: m.cfg.NoFile,
		disk: rs.disk, dir: p.spec.Dir, env: env, out: logf, path: target, args: p.spec.Args})
	if errors.Is(err, errSandboxClosed) {
		logf.Close()
		return nil, errRunStopped
	}
	if err != nil {
		fmt.Fprintf(logf, "--- weft: cannot start %s: %v\n", p.name, err)
	}
	logf.Close()
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", p.name, err)
	}
	pid := cmd.Process.Pid
	start := procStart(pid)
	exited := make(chan struct{})
	m.mu.Lock()
	p.pid, p.start, p.running, p.adopted, p.exited, p.settled = pid, start, true, false, exited, false
	m.recordProcsLocked(in, rs)
	m.refreshLocked(in)
	m.mu.Unlock()
	go func() {
		werr := cmd.Wait()
		var cpu int64
		if ps := cmd.ProcessState; ps != nil {
			cpu = int64(ps.UserTime() + ps.SystemTime())
		}
		m.mu.Lock()
		p.running = false
		p.exitOK = werr == nil
		p.lastExit = "exit status 0"
		if werr != nil {
			p.lastExit = werr.Error()
		}
		if s := m.series[in.rec.ID]; s != nil {
			s.deadCPU += cpu
		}
		m.refreshLocked(in)
		m.mu.Unlock()
		close(exited)
	}()
	return exited, nil
}

// gateScript is run by /bin/sh -c with the command and its arguments: it
// waits for a line on fd 3 (written once the process is in its cgroup; end
// of file means the node gave up: exit 125), closes fd 3, sets its rlimits
// (soft and hard: open files, no core dumps, files at most disk bytes when
// disk > 0; lowering needs no capability) or exits 126, and execs the
// command in the same process.
func gateScript(nofile uint64, disk int64) string {
	lim := fmt.Sprintf("ulimit -n %d && ulimit -c 0", nofile)
	if disk > 0 {
		lim += fmt.Sprintf(" && ulimit -f %d", max(disk/512, 1)) // 512-byte blocks (POSIX)
	}
	return `IFS= read -r _ <&3 || exit 125; exec 3<&-; ` + lim +
		` || { echo "weft: cannot set rlimits" >&2; exit 126; }; exec "$@"`
}

// procAttr is the SysProcAttr of a process of rs: its own process group;
// the user comes from the sandbox thread it is forked from (set here only
// when there is no sandbox).
func (rs *runState) procAttr() *syscall.SysProcAttr {
	a := &syscall.SysProcAttr{Setpgid: true}
	if rs.sb == nil && rs.acct.set() {
		a.Credential = &syscall.Credential{Uid: uint32(rs.acct.UID), Gid: uint32(rs.acct.GID), Groups: []uint32{}}
	}
	return a
}

// errRunStopped: the run was cancelled before the process could start.
var errRunStopped = errors.New("partition: run stopped")

// watchAdopted follows a process started by an earlier run of the node: it
// is not our child, so it is polled (pid and start time) until it is gone.
func (m *Manager) watchAdopted(in *instance, rs *runState, p *proc, r procRecord) chan struct{} {
	exited := make(chan struct{})
	m.mu.Lock()
	p.pid, p.start, p.running, p.adopted, p.exited, p.settled = r.PID, r.Start, true, true, exited, false
	m.refreshLocked(in)
	m.mu.Unlock()
	go func() {
		t := wallClock.NewTicker(250 * time.Millisecond) // polls the kernel
		defer t.Stop()
		for procAlive(r.PID, r.Start) {
			select {
			case <-t.C():
			case <-m.ctx.Done():
				if m.cfg.KeepRunningOnClose {
					return
				}
				// Close stops the run; keep watching until the process is gone.
				<-t.C()
			}
		}
		m.mu.Lock()
		p.running, p.exitOK = false, false
		p.lastExit = "exited (status unknown: adopted after a node restart)"
		m.refreshLocked(in)
		m.mu.Unlock()
		close(exited)
	}()
	return exited
}

// recordProcsLocked persists the run's live pids and start times.
func (m *Manager) recordProcsLocked(in *instance, rs *runState) {
	in.rec.Procs = in.rec.Procs[:0]
	for _, p := range rs.procs {
		if p.running && p.pid > 0 {
			in.rec.Procs = append(in.rec.Procs, procRecord{Name: p.name, PID: p.pid, Start: p.start})
		}
	}
	m.persistLocked()
}

// procFinished notes that p exited for good; when every process of the run
// has, the instance is completed (all exited 0) or failed.
func (m *Manager) procFinished(in *instance, rs *runState, p *proc, ok bool, msg string) {
	m.mu.Lock()
	rs.finished++
	if !ok && rs.failMsg == "" {
		rs.failMsg = fmt.Sprintf("process %s: %s", p.name, msg)
	}
	if rs.finished < len(rs.procs) || in.run != rs || rs.ctx.Err() != nil {
		m.mu.Unlock()
		return
	}
	// What the run left behind (setsid, double fork) is killed before
	// anything of the partition is read: nothing races the result walk.
	// The outcome is the run's processes' own.
	m.mu.Unlock()
	m.killPartition(rs.idx)
	m.mu.Lock()
	if in.run != rs || rs.ctx.Err() != nil {
		m.mu.Unlock()
		return
	}
	if rs.failMsg == "" && rs.batch && rs.disk > 0 {
		m.mu.Unlock()
		used := duBytes(m.partDir(rs.idx)) + rs.sb.tmpBytes()
		m.mu.Lock()
		full := m.sandbox.DiskQuota && imageFull(m.partDir(rs.idx))
		if used > rs.disk && rs.failMsg == "" {
			rs.failMsg = fmt.Sprintf("%v: the partition holds %d bytes, its disk resource is %d", errDiskQuota, used, rs.disk)
		} else if full && rs.failMsg == "" {
			rs.failMsg = fmt.Sprintf("%v: the partition's file system (its disk resource, %d bytes) is full", errDiskQuota, rs.disk)
		}
		if in.run != rs || rs.ctx.Err() != nil {
			m.mu.Unlock()
			return
		}
	}
	fail := rs.failMsg
	in.rec.Procs = nil
	if fail != "" {
		in.rec.Phase, in.rec.Error = PhaseFailed, fail
	} else {
		in.rec.Phase, in.rec.Error = PhaseCompleted, ""
	}
	m.persistLocked()
	m.refreshLocked(in)
	out := filepath.Join(m.partDir(rs.idx), "out")
	id := in.rec.ID
	m.mu.Unlock()
	rs.cancel()
	if fail == "" && rs.batch && m.cfg.Results != nil {
		c, err := m.cfg.Results.PutDir(m.ctx, out)
		m.mu.Lock()
		switch {
		case errors.Is(err, ErrNoResultStore):
		case err != nil:
			m.cfg.Log.Warn("partition: store batch result", "instance", id, "err", err)
			in.rec.Error = "store result: " + err.Error()
		default:
			in.rec.ResultCID = c
		}
		m.persistLocked()
		m.refreshLocked(in)
		m.mu.Unlock()
	}
}

// stopRun stops every process of rs: SIGTERM to each process group and to
// everything left in the partition's cgroup, then SIGKILL after the grace.
func (m *Manager) stopRun(in *instance, rs *runState) {
	rs.cancel()
	// A launch in progress finishes registering its process (or sees the
	// cancellation and starts nothing) before the processes are listed.
	rs.launchMu.Lock()
	m.mu.Lock()
	type target struct {
		pid    int
		exited chan struct{}
	}
	var ts []target
	for _, p := range rs.procs {
		// A process that exited earlier (restart = never, a back-off) was
		// dealt with by its supervisor: its pid may be another's now.
		if p.exited != nil && !p.settled {
			ts = append(ts, target{p.pid, p.exited})
		}
	}
	m.mu.Unlock()
	rs.launchMu.Unlock()
	signal := func(sig syscall.Signal) {
		for _, t := range ts {
			killGroup(t.pid, sig)
		}
		for _, pid := range m.cg.procs(rs.idx) {
			_ = syscall.Kill(pid, sig)
		}
	}
	done := func() bool {
		for _, t := range ts {
			select {
			case <-t.exited:
			default:
				return false
			}
		}
		return len(m.cg.procs(rs.idx)) == 0
	}
	waitFor := func(d time.Duration) bool {
		deadline := wallClock.Now().Add(d)
		for !done() {
			if wallClock.Now().After(deadline) {
				return false
			}
			<-wallClock.After(20 * time.Millisecond)
		}
		return true
	}
	signal(syscall.SIGTERM)
	if !waitFor(m.cfg.StopGrace) {
		signal(syscall.SIGKILL)
		if !waitFor(10 * time.Second) {
			m.cfg.Log.Error("partition: processes survive SIGKILL", "instance", in.rec.ID)
		}
	}
	for _, t := range ts {
		killGroup(t.pid, syscall.SIGKILL) // group members left by a dead leader
	}
	at := wallClock.Now()
	rs.wg.Wait()
	at = m.slowStep(in.rec.ID, "wait for the run's supervisors and checks", at)
	m.killPartition(rs.idx) // what left its group (setsid) and its cgroup (none)
	at = m.slowStep(in.rec.ID, "kill what is left of the partition", at)
	m.sampleIDs([]string{in.rec.ID}, false)
	m.slowStep(in.rec.ID, "last usage sample", at)
}

// slowStepAfter is how long one step of a stop or destroy may take before
// it is logged (a stop that lingers says where).
const slowStepAfter = 5 * time.Second

// slowStep logs step of instance id when it took slowStepAfter or more
// since at, and returns now (the start of the next step).
func (m *Manager) slowStep(id, step string, at time.Time) time.Time {
	now := wallClock.Now()
	if d := now.Sub(at); d >= slowStepAfter {
		m.cfg.Log.Warn("partition: slow step", "instance", id, "step", step, "took", d.Round(time.Millisecond))
	}
	return now
}

// stopInstance stops in's run and records phase.
func (m *Manager) stopInstance(in *instance, phase Phase) {
	m.mu.Lock()
	rs := in.run
	m.mu.Unlock()
	if rs != nil {
		m.stopRun(in, rs)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if in.run == rs {
		in.run = nil
	}
	in.rec.Procs = nil
	if phase == PhaseStopped || active(in.rec.Phase) {
		in.rec.Phase = phase
	}
	m.persistLocked()
	m.refreshLocked(in)
}

// destroyInstance stops everything, wipes the partition and frees it.
func (m *Manager) destroyInstance(in *instance) {
	m.mu.Lock()
	idx := in.rec.Partition
	in.rec.Phase = PhaseDestroying
	m.refreshLocked(in)
	m.mu.Unlock()
	at := wallClock.Now()
	m.stopInstance(in, PhaseDestroying)
	if idx >= 0 {
		at = m.slowStep(in.rec.ID, "destroy: stop", at)
		m.killPartition(idx) // anything that escaped the groups
		at = m.slowStep(in.rec.ID, "destroy: kill what is left of the partition", at)
		if err := m.cg.remove(idx); err != nil {
			m.cfg.Log.Warn("partition: remove cgroup", "partition", idx, "err", err)
		}
		m.mu.Lock()
		delete(m.diskLegacy, idx)
		m.mu.Unlock()
		if os.Geteuid() == 0 {
			// The image goes with the tenant: the next one gets a fresh one.
			if err := m.disk.release(idx, m.partDir(idx), m.users[idx]); err != nil {
				m.cfg.Log.Error("partition: wipe", "partition", idx, "err", err)
			}
			at = m.slowStep(in.rec.ID, "destroy: unmount and renew the disk image", at)
		}
		if err := safefs.RemoveAll(m.partDir(idx)); err != nil {
			m.cfg.Log.Error("partition: wipe", "partition", idx, "err", err)
		}
		m.slowStep(in.rec.ID, "destroy: wipe the partition", at)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if idx >= 0 && idx < len(m.slots) && m.slots[idx] == in.rec.ID {
		m.slots[idx] = ""
	}
	in.rec.Partition, in.rec.Ports, in.rec.RunGen = -1, nil, ""
	if s := m.series[in.rec.ID]; s != nil {
		s.gone = m.cfg.Clock.Now()
	}
	if in.rec.State == StateDestroyed || m.insts[in.rec.ID] != in {
		delete(m.insts, in.rec.ID)
		m.persistLocked()
		in.st.Phase, in.st.Partition, in.st.UpdatedAt = PhaseDestroyed, -1, m.cfg.Clock.Now().UTC()
		in.st.Processes = []ProcessStatus{}
		m.emitLocked(in.st)
		return
	}
	in.rec.Phase = PhasePending // wanted again meanwhile
	m.persistLocked()
	m.refreshLocked(in)
}

// recover runs once at Start: adopt or stop what the last run left.
func (m *Manager) recover() {
	m.mu.Lock()
	ins := make([]*instance, 0, len(m.insts))
	for _, in := range m.insts {
		ins = append(ins, in)
	}
	m.mu.Unlock()
	sort.Slice(ins, func(i, j int) bool { return ins[i].rec.ID < ins[j].rec.ID })
	if os.Geteuid() == 0 {
		m.recoverDiskImages(ins)
	}
	for _, in := range ins {
		m.mu.Lock()
		r := in.rec
		m.mu.Unlock()
		var alive, dead []procRecord
		for _, p := range r.Procs {
			if procAlive(p.PID, p.Start) {
				alive = append(alive, p)
			} else {
				dead = append(dead, p)
			}
		}
		if m.tryAdopt(in, alive) {
			m.cfg.Log.Info("partition: re-adopted instance", "instance", r.ID, "processes", len(alive))
			continue
		}
		for _, p := range alive {
			killGroup(p.PID, syscall.SIGKILL)
		}
		// What is left in the groups of leaders that died with the node
		// (without cgroups, nothing else finds those processes).
		left := killLeftoverGroups(dead)
		if r.Partition >= 0 {
			m.killPartition(r.Partition)
		}
		deadline := wallClock.Now().Add(5 * time.Second)
		for _, p := range append(alive, left...) {
			for procAlive(p.PID, p.Start) && wallClock.Now().Before(deadline) {
				<-wallClock.After(10 * time.Millisecond)
			}
		}
		m.mu.Lock()
		in.rec.Procs = nil
		if active(in.rec.Phase) || in.rec.Phase == PhaseDestroying {
			in.rec.Phase = PhaseStopped
		}
		m.refreshLocked(in)
		m.mu.Unlock()
	}
	m.mu.Lock()
	m.persistLocked()
	adopted := map[string]bool{}
	for _, in := range m.insts {
		if in.run != nil && in.rec.Partition >= 0 {
			adopted[partCgroup(in.rec.Partition)] = true
		}
	}
	m.mu.Unlock()
	m.sweepLeftovers(adopted)
}

// sweepLeftovers kills and removes what a node killed with SIGKILL left
// that this run does not adopt: the processes of partitions without an
// adopted instance and of installs (by cgroup and by user), and every
// cgroup of the node but the adopted partitions'.
func (m *Manager) sweepLeftovers(adopted map[string]bool) {
	m.cg.sweep(func(name string) bool { return adopted[name] })
	for i := range m.slots {
		if !adopted[partCgroup(i)] {
			killUser(m.users[i], killWait)
		}
	}
	killUser(m.installAs, killWait)
}

// tryAdopt takes over a service instance whose processes all survived.
func (m *Manager) tryAdopt(in *instance, alive []procRecord) bool {
	m.mu.Lock()
	r, rc, stErr := in.rec, in.recipe, in.st.Error
	m.mu.Unlock()
	if r.State != StateStarted || !active(r.Phase) || r.RunGen != r.Gen || r.Partition < 0 ||
		len(r.Procs) == 0 || len(alive) != len(r.Procs) || rc == nil || stErr != "" {
		return false
	}
	t, err := rc.Type(r.Type)
	if err != nil || t.Batch || len(t.Processes) != len(alive) {
		return false
	}
	soft := filepath.Join(m.softDir, r.RecipeCID)
	rs, ports, err := m.newRun(r, rc, r.Partition, soft, t)
	if err != nil || !maps.Equal(ports, r.Ports) {
		// The port range moved (port_base or ports_per_partition changed):
		// the survivors listen on ports that are no longer the partition's.
		return false
	}
	if err := m.openRunSandbox(rs, soft); err != nil {
		m.cfg.Log.Warn("partition: sandbox for adopted instance", "instance", r.ID, "err", err)
		rs.cancel()
		return false
	}
	adopt := map[string]procRecord{}
	for _, p := range alive {
		adopt[p.Name] = p
	}
	for _, p := range rs.procs {
		if _, ok := adopt[p.name]; !ok {
			return false
		}
	}
	m.mu.Lock()
	in.run = rs
	in.rec.Phase = PhaseStarting
	m.refreshLocked(in)
	m.mu.Unlock()
	m.runProcs(in, rs, adopt, t)
	return true
}

func sortedEnv(env map[string]string) []string {
	out := make([]string, 0, len(env))
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	slices.Sort(out)
	return out
}

// withDefaults returns params with the schema's defaults for what is
// missing (callers normally pass recipes.ValidateParams' output, which
// already has them).
func withDefaults(params map[string]any, rc *recipes.Recipe, t *recipes.SoftwareType) map[string]any {
	out := make(map[string]any, len(params))
	for _, schema := range []map[string]*recipes.Param{rc.Params, t.Params} {
		for k, p := range schema {
			if p != nil && p.Default != nil {
				out[k] = p.Default
			}
		}
	}
	for k, v := range params {
		out[k] = v
	}
	return out
}

// lookPath resolves a command without a slash in the PATH of env (the
// partition's environment, not the node's), so instances never run
// programs from the node user's private directories.
func lookPath(name string, env []string) string {
	if name == "" || strings.Contains(name, "/") {
		return name
	}
	path := ""
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			path = v // the last PATH wins, as for exec
		}
	}
	for _, dir := range filepath.SplitList(path) {
		if dir == "" || !filepath.IsAbs(dir) {
			continue
		}
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0 {
			return p
		}
	}
	return name
}

// testHookLaunch, when set by tests, runs at the start of each launch.
var testHookLaunch func(rs *runState)

// killLeftoverGroups SIGKILLs the members of the process groups led by the
// dead recorded leaders and returns them. The group's id is the leader's
// pid, which the kernel does not hand out again while the group has
// members; a live group leader with that pid is a reuse (the recorded
// leader is dead) and its group is left alone. Members started before the
// recorded leader cannot be its children and are left alone too.
func killLeftoverGroups(dead []procRecord) []procRecord {
	if len(dead) == 0 {
		return nil
	}
	procs := scanProcs()
	leaders := map[int]bool{}
	for _, p := range procs {
		if p.PID == p.PGID {
			leaders[p.PID] = true
		}
	}
	var out []procRecord
	for _, r := range dead {
		if leaders[r.PID] {
			continue
		}
		for _, p := range procs {
			if p.PGID == r.PID && p.Start >= r.Start {
				_ = syscall.Kill(p.PID, syscall.SIGKILL)
				out = append(out, procRecord{Name: r.Name, PID: p.PID, Start: p.Start})
			}
		}
	}
	return out
}
