package partition

import (
	"bytes"
	"os"
	"strconv"
	"strings"
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

// parseProcStat parses the content of /proc/PID/stat. The command name
// (field 2) may contain spaces and parentheses, so fields are counted from
// the last ')'.
func parseProcStat(b []byte) (procStat, bool) {
	var s procStat
	open := bytes.IndexByte(b, '(')
	end := bytes.LastIndexByte(b, ')')
	if open < 1 || end < open || end+2 >= len(b) {
		return s, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b[:open])))
	if err != nil {
		return s, false
	}
	s.PID = pid
	f := strings.Fields(string(b[end+2:]))
	// f[0] is field 3 (state); field k is f[k-3].
	if len(f) < 22 {
		return s, false
	}
	s.State = f[0][0]
	if !('A' <= s.State && s.State <= 'Z' || 'a' <= s.State && s.State <= 'z') {
		return s, false
	}
	num := func(k int) uint64 { v, _ := strconv.ParseUint(f[k-3], 10, 64); return v }
	inum := func(k int) int64 { v, _ := strconv.ParseInt(f[k-3], 10, 64); return v }
	s.PPID = int(inum(4))
	s.PGID = int(inum(5))
	s.CPUTicks = num(14) + num(15) + uint64(max(inum(16), 0)) + uint64(max(inum(17), 0))
	s.Start = num(22)
	s.RSSPages = inum(24)
	return s, true
}

func readProcStat(pid int) (procStat, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procStat{}, false
	}
	return parseProcStat(b)
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
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	out := make([]procStat, 0, len(ents))
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if s, ok := readProcStat(pid); ok && s.State != 'Z' {
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
