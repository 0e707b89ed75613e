package partition

import (
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"golang.org/x/sys/unix"

	"github.com/weftgrid/weft/partition/metering"
	"github.com/weftgrid/weft/recipes/safefs"
)

// series is the samples kept for one instance.
type series struct {
	samples []metering.Sample
	// deadCPU is CPU time of reaped processes (for the /proc fallback,
	// which only sees live processes).
	deadCPU int64
	disk    int64
	diskAt  time.Time
	gone    time.Time // when the instance was destroyed
}

func (m *Manager) ensureSeries(id string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if s := m.series[id]; s == nil {
		m.series[id] = &series{disk: metering.Unknown}
	} else {
		s.gone = time.Time{} // running again: keep it past the retention of its destroy
	}
}

// sampleLoop samples every instance's usage and rotates logs.
func (m *Manager) sampleLoop() {
	defer m.loops.Done()
	t := m.cfg.Clock.NewTicker(m.cfg.SampleInterval)
	defer t.Stop()
	for {
		select {
		case <-m.ctx.Done():
			return
		case <-t.C():
		}
		m.mu.Lock()
		var ids []string
		var logs []string
		for id, in := range m.insts {
			if in.rec.Partition >= 0 {
				ids = append(ids, id)
			}
			if rs := in.run; rs != nil {
				for _, p := range rs.procs {
					logs = append(logs, p.log)
				}
			}
		}
		now := m.cfg.Clock.Now()
		for id, s := range m.series {
			if !s.gone.IsZero() && now.Sub(s.gone) > m.cfg.Retention {
				delete(m.series, id)
			}
		}
		m.mu.Unlock()
		m.sampleIDs(ids, false)
		for _, l := range logs {
			rotateLog(l, m.cfg.LogMaxBytes, m.cfg.LogKeep)
		}
	}
}

type sampleTarget struct {
	id    string
	idx   int
	pgids map[int]bool
	disk  bool
	sb    *sandbox // the run's, for its private /tmp and /dev/shm
	// dead is the series' deadCPU when pgids were taken, before /proc is
	// scanned: a process reaped after this is still in the scan (or, reaped
	// before the scan, missing from both, for one sample), never counted twice.
	dead int64
}

// diskQuotaInterval is the longest time between two measurements of a
// partition whose instance has a disk resource (it fails when over it).
const diskQuotaInterval = 5 * time.Second

// sampleIDs takes one sample of each instance; forceDisk measures disk now.
func (m *Manager) sampleIDs(ids []string, forceDisk bool) {
	now := m.cfg.Clock.Now()
	var ts []sampleTarget
	m.mu.Lock()
	for _, id := range ids {
		in, ok := m.insts[id]
		if !ok || in.rec.Partition < 0 {
			continue
		}
		s := m.series[id]
		if s == nil {
			s = &series{disk: metering.Unknown}
			m.series[id] = s
		}
		every := m.cfg.DiskInterval
		if in.run != nil && in.run.disk > 0 {
			// Its disk resource is enforced by measuring: more often.
			every = min(every, diskQuotaInterval)
		}
		t := sampleTarget{id: id, idx: in.rec.Partition, pgids: map[int]bool{},
			disk: forceDisk || now.Sub(s.diskAt) >= every, dead: s.deadCPU}
		if rs := in.run; rs != nil {
			t.sb = rs.sb
			for _, p := range rs.procs {
				if p.running && p.pid > 0 {
					t.pgids[p.pid] = true
				}
			}
		}
		ts = append(ts, t)
	}
	m.mu.Unlock()
	var procs []procStat
	scanned := false
	pageSize := int64(os.Getpagesize())
	for _, t := range ts {
		// Samplers run concurrently (this loop, every supervisor when its
		// process exits, start and stop). The timestamp is taken with the
		// cgroup readings, so a later timestamp means a later reading; a
		// sample whose timestamp is older than one already appended is
		// dropped below, which keeps the series sorted and its counters
		// from seeming to reset.
		m.sampleMu.Lock()
		at := m.cfg.Clock.Now()
		cpu, cpuOK := m.cg.cpuNanos(t.idx)
		mem, memOK := m.cg.memBytes(t.idx)
		// The counters may run the nft command: read here, never under
		// m.mu (every status read and the biller's usage wait on it).
		netBytes := m.net.bytes(t.idx, at)
		m.sampleMu.Unlock()
		var procCPU int64
		if !cpuOK || !memOK {
			if !scanned {
				procs, scanned = scanProcs(), true
			}
			var rss int64
			for _, p := range procs {
				if t.pgids[p.PGID] {
					procCPU += int64(p.CPUTicks) * (int64(time.Second) / clockTicks)
					rss += p.RSSPages * pageSize
				}
			}
			if !memOK {
				mem = rss
			}
		}
		disk := int64(-2)
		if t.disk {
			disk = duBytes(m.partDir(t.idx))
			if disk >= 0 {
				disk += t.sb.tmpBytes() // its /tmp and /dev/shm count too
			}
		}
		m.mu.Lock()
		s := m.series[t.id]
		if s == nil || len(s.samples) > 0 && at.Before(s.samples[len(s.samples)-1].At) {
			m.mu.Unlock()
			continue
		}
		if !cpuOK {
			cpu = procCPU + t.dead
			// CPU time is cumulative: a process reaped between the
			// snapshot and the scan is missing from this sample only.
			if n := len(s.samples); n > 0 && cpu < s.samples[n-1].CPUNanos {
				cpu = s.samples[n-1].CPUNanos
			}
		}
		if disk != -2 {
			s.disk, s.diskAt = disk, now
			if in := m.insts[t.id]; in != nil && in.run != nil && in.rec.Partition == t.idx &&
				in.run.disk > 0 && (disk > in.run.disk || m.sandbox.DiskQuota) {
				go m.checkDisk(in.run, disk)
			}
		}
		s.samples = append(s.samples, metering.Sample{At: at, CPUNanos: cpu, MemBytes: mem,
			DiskBytes: s.disk, NetBytes: netBytes})
		// Drop what is older than the retention.
		cut := 0
		for cut < len(s.samples)-1 && at.Sub(s.samples[cut].At) > m.cfg.Retention {
			cut++
		}
		if cut > 0 {
			s.samples = append(s.samples[:0], s.samples[cut:]...)
		}
		m.mu.Unlock()
	}
}

// duBytes is the disk space allocated below dir (hard links counted once),
// measured from directory descriptors without following a symbolic link.
func duBytes(dir string) int64 { return safefs.DiskUsage(dir) }

// rotateLog rotates path when it is over maxBytes: path.1 … path.keep hold
// older content. Processes keep writing to path (opened O_APPEND), so it is
// copied and truncated rather than renamed; lines written between the copy
// and the truncation are lost. It runs while the instance runs, in a log
// directory the instance owns: everything is done relative to the
// directory opened without following a symlink, and only regular files are
// opened (never blocking on a FIFO).
func rotateLog(path string, maxBytes int64, keep int) {
	dfd, err := openDirNoFollow(filepath.Dir(path))
	if err != nil {
		return
	}
	defer unix.Close(dfd)
	name := filepath.Base(path)
	var st unix.Stat_t
	if err := unix.Fstatat(dfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil ||
		st.Mode&unix.S_IFMT != unix.S_IFREG || st.Size <= maxBytes {
		return
	}
	for i := keep - 1; i >= 1; i-- {
		_ = unix.Renameat(dfd, name+"."+strconv.Itoa(i), dfd, name+"."+strconv.Itoa(i+1))
	}
	src, err := openRegularAt(dfd, name, os.O_RDWR, 0)
	if err != nil {
		return
	}
	defer src.Close()
	if err := unix.Fstat(int(src.Fd()), &st); err != nil {
		return
	}
	_ = unix.Unlinkat(dfd, name+".1", 0)
	dst, err := openRegularAt(dfd, name+".1", os.O_CREATE|os.O_EXCL|os.O_WRONLY, st.Mode&0o777)
	if err != nil {
		return
	}
	_, _ = io.Copy(dst, src)
	_ = dst.Chown(int(st.Uid), int(st.Gid))
	dst.Close()
	_ = src.Truncate(0)
}
