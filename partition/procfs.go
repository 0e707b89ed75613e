package partition

import (
	"github.com/prometheus/procfs"
)

// clockTicks is USER_HZ, the unit of /proc/PID/stat times (100 on Linux).
const clockTicks = 100

// procStat holds the fields of /proc/PID/stat the runtime uses.
type procStat struct {
	PID   int
	State byte
	PPID  int
	PGID  int
	// CPUTicks is utime + stime + cutime + cstime, in clock ticks.
	CPUTicks uint64
	// Start is the start time in clock ticks since boot.
	Start uint64
	// RSSPages is the resident set size in pages.
	RSSPages int64
}

// procFS reads /proc. Metering samples each partition's processes once per
// metering interval; prometheus/procfs parses /proc/PID/stat (a command
// name may hold spaces and parentheses, fields move between kernels).
var procFS, procFSErr = procfs.NewDefaultFS()

func fromProcfs(st procfs.ProcStat) (procStat, bool) {
	if st.State == "" {
		return procStat{}, false
	}
	return procStat{
		PID:      st.PID,
		State:    st.State[0],
		PPID:     st.PPID,
		PGID:     st.PGRP,
		CPUTicks: uint64(st.UTime) + uint64(st.STime) + uint64(max(st.CUTime, 0)) + uint64(max(st.CSTime, 0)),
		Start:    st.Starttime,
		RSSPages: int64(st.RSS),
	}, true
}

func readProcStat(pid int) (procStat, bool) {
	if procFSErr != nil {
		return procStat{}, false
	}
	p, err := procFS.Proc(pid)
	if err != nil {
		return procStat{}, false
	}
	st, err := p.Stat()
	if err != nil {
		return procStat{}, false
	}
	return fromProcfs(st)
}

// procAlive reports whether pid runs and is the process that started at
// start (not a zombie, not a reused pid).
func procAlive(pid int, start uint64) bool {
	s, ok := readProcStat(pid)
	return ok && s.State != 'Z' && s.State != 'X' && (start == 0 || s.Start == start)
}

// procStart returns pid's start time, 0 when unknown.
func procStart(pid int) uint64 {
	s, _ := readProcStat(pid)
	return s.Start
}

// scanProcs reads every process's stat once (for the /proc fallback of
// metering and for finding a process group's members).
func scanProcs() []procStat {
	if procFSErr != nil {
		return nil
	}
	all, err := procFS.AllProcs()
	if err != nil {
		return nil
	}
	out := make([]procStat, 0, len(all))
	for _, p := range all {
		st, err := p.Stat()
		if err != nil {
			continue // exited since the listing
		}
		if s, ok := fromProcfs(st); ok && s.State != 'Z' {
			out = append(out, s)
		}
	}
	return out
}

// groupMembers returns the live pids whose process group is one of pgids.
func groupMembers(procs []procStat, pgids map[int]bool) []int {
	var out []int
	for _, p := range procs {
		if pgids[p.PGID] {
			out = append(out, p.PID)
		}
	}
	return out
}
