package partition

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/weftgrid/weft/recipes"
	"golang.org/x/sys/unix"
)

// promiseClient makes HTTP promise checks for rs (no keep-alive: each check
// is a fresh connection, as a client would make), dialling from its
// sandbox: as the partition's user, never as the node.
func promiseClient(rs *runState) *http.Client {
	return &http.Client{
		Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil, DialContext: rs.dial},
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// dial connects from rs's sandbox thread, so the socket is the
// partition's (its user, its Landlock domain), not the node's. The
// address is resolved here; the thread makes the socket and a blocking
// connect (bounded by ctx's deadline), one hop to the thread and back.
func (rs *runState) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	d := net.Dialer{FallbackDelay: -1}
	if rs.sb == nil {
		return d.DialContext(ctx, network, addr)
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return nil, err
	}
	pn, err := net.DefaultResolver.LookupPort(ctx, network, port)
	if err != nil {
		return nil, err
	}
	ip := ips[0].Unmap()
	var sa unix.Sockaddr = &unix.SockaddrInet4{Port: pn, Addr: ip.As4()}
	family := unix.AF_INET
	if ip.Is6() {
		sa, family = &unix.SockaddrInet6{Port: pn, Addr: ip.As16(), ZoneId: zoneID(ip.Zone())}, unix.AF_INET6
	}
	timeout := 5 * time.Second
	if dl, ok := ctx.Deadline(); ok {
		timeout = max(dl.Sub(wallClock.Now()), time.Millisecond) // the socket's, on real time
	}
	fd := -1
	if e := rs.sb.do(func() {
		fd, err = unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return
		}
		tv := unix.NsecToTimeval(timeout.Nanoseconds())
		_ = unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_SNDTIMEO, &tv)
		if err = unix.Connect(fd, sa); err != nil {
			unix.Close(fd)
			fd = -1
		}
	}); e != nil {
		return nil, e
	}
	if err != nil {
		if errors.Is(err, unix.EINPROGRESS) || errors.Is(err, unix.EAGAIN) {
			err = fmt.Errorf("connect: timed out after %s", timeout)
		}
		return nil, &net.OpError{Op: "dial", Net: network, Addr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(ip, uint16(pn))), Err: err}
	}
	f := os.NewFile(uintptr(fd), "promise")
	defer f.Close()
	return net.FileConn(f) // a non-blocking duplicate in the poller
}

func zoneID(zone string) uint32 {
	if zone == "" {
		return 0
	}
	if ifi, err := net.InterfaceByName(zone); err == nil {
		return uint32(ifi.Index)
	}
	return 0
}

// checkPromise runs one check of pr, bounded by its timeout.
func (m *Manager) checkPromise(ctx context.Context, rs *runState, pr recipes.Promise) error {
	timeout := pr.Timeout.D()
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	switch pr.Kind {
	case recipes.PromiseTCP:
		c, err := rs.dial(ctx, "tcp", pr.Target)
		if err != nil {
			return err
		}
		return c.Close()
	case recipes.PromiseHTTP:
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, pr.Target, nil)
		if err != nil {
			return err
		}
		resp, err := promiseClient(rs).Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		// A response cut short (or still coming at the timeout) is a failure,
		// whatever its status line said.
		body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		if err != nil {
			if ctx.Err() == context.DeadlineExceeded {
				return fmt.Errorf("HTTP %d: body not received within %s", resp.StatusCode, timeout)
			}
			return fmt.Errorf("HTTP %d: reading body: %w", resp.StatusCode, err)
		}
		want := pr.ExpectStatus
		if want == 0 {
			want = http.StatusOK
		}
		if resp.StatusCode != want {
			return fmt.Errorf("HTTP %d, want %d", resp.StatusCode, want)
		}
		if pr.ExpectBody != "" && !strings.Contains(string(body), pr.ExpectBody) {
			return fmt.Errorf("body does not contain %q", pr.ExpectBody)
		}
		return nil
	case recipes.PromiseCommand:
		return m.checkCommand(ctx, rs, pr, timeout)
	}
	return fmt.Errorf("unknown promise kind %q", pr.Kind)
}

// checkCommand runs a command promise in the partition's sandbox, as its
// user, in its own process group. When the shell exits (by itself, or killed at the
// timeout), whatever it left in its group is killed before the shell is
// reaped (so the group id is still ours): a check leaves no process behind,
// and a background child holding its output does not hold the check.
func (m *Manager) checkCommand(ctx context.Context, rs *runState, pr recipes.Promise, timeout time.Duration) error {
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	defer r.Close()
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", pr.Command)
	cmd.Dir = m.partDir(rs.idx)
	cmd.Env = rs.env
	cmd.Stdout, cmd.Stderr = w, w // a file: Wait does not wait for the output
	cmd.SysProcAttr = rs.procAttr()
	cmd.Cancel = func() error { killGroup(cmd.Process.Pid, syscall.SIGKILL); return nil }
	err = rs.sb.start(cmd)
	w.Close()
	if err != nil {
		return err
	}
	output := make(chan []byte, 1)
	go func() {
		var out []byte
		buf := make([]byte, 4096)
		for {
			n, err := r.Read(buf)
			if len(out) < 4096 {
				out = append(out, buf[:min(n, 4096-len(out))]...)
			}
			if err != nil {
				output <- out
				return
			}
		}
	}()
	pid := cmd.Process.Pid
	waitExitNoReap(pid)
	_ = syscall.Kill(-pid, syscall.SIGKILL) // what the shell left behind
	err = cmd.Wait()
	var out []byte
	select {
	case out = <-output:
	case <-wallClock.After(time.Second): // held by a process that left the group
	}
	if ctx.Err() == context.DeadlineExceeded && (cmd.ProcessState == nil || !cmd.ProcessState.Exited()) {
		return fmt.Errorf("timed out after %s", timeout)
	}
	if err != nil {
		msg := strings.TrimSpace(string(out))
		if len(msg) > 200 {
			msg = msg[:200] + "…"
		}
		if msg != "" {
			return fmt.Errorf("%v: %s", err, msg)
		}
		return err
	}
	return nil
}

// waitExitNoReap waits until the child pid has exited without reaping it:
// until the caller reaps it, its pid and process group id stay taken.
func waitExitNoReap(pid int) {
	for {
		var info unix.Siginfo
		err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if err != unix.EINTR {
			return
		}
	}
}

// promiseLoop checks test promises right after start until they all pass
// (the instance is then running), then anomaly promises every period.
func (m *Manager) promiseLoop(in *instance, rs *runState) {
	defer rs.wg.Done()
	prs := rs.rendered.Promises
	select {
	case <-rs.launched:
	case <-rs.ctx.Done():
		return
	}
	record := func(i int, err error) {
		m.mu.Lock()
		defer m.mu.Unlock()
		ps := &rs.promises[i]
		ps.OK, ps.CheckedAt, ps.LastError = err == nil, m.cfg.Clock.Now().UTC(), ""
		if err != nil {
			ps.LastError = err.Error()
		}
		healthy := true
		for _, p := range rs.promises {
			if !p.CheckedAt.IsZero() && !p.OK {
				healthy = false
			}
		}
		rs.healthy = healthy
		if in.run == rs {
			m.refreshLocked(in)
		}
	}
	// Test promises: quick polling with back-off, until each passed once.
	passed := make([]bool, len(prs))
	delay := 5 * time.Millisecond
	for {
		all := true
		for i, pr := range prs {
			if passed[i] || !when(pr).IsTest() {
				continue
			}
			err := m.checkPromise(rs.ctx, rs, pr)
			if rs.ctx.Err() != nil {
				return
			}
			record(i, err)
			passed[i] = err == nil
			all = all && passed[i]
		}
		if all {
			break
		}
		select {
		case <-rs.ctx.Done():
			return
		case <-m.cfg.Clock.After(delay):
		}
		delay = min(delay*3/2, time.Second)
	}
	m.mu.Lock()
	if in.run == rs && in.rec.Phase == PhaseStarting {
		in.rec.Phase = PhaseRunning
		rs.readyAt = m.cfg.Clock.Now().UTC()
		rs.healthy = true
		for _, p := range rs.promises {
			rs.healthy = rs.healthy && (p.CheckedAt.IsZero() || p.OK)
		}
		m.persistLocked()
		m.refreshLocked(in)
	}
	m.mu.Unlock()
	// Anomaly promises, each on its own period.
	next := make([]time.Time, len(prs))
	now := m.cfg.Clock.Now()
	any := false
	for i, pr := range prs {
		if when(pr).IsAnomaly() {
			next[i] = now.Add(period(pr))
			any = true
		}
	}
	if !any {
		return
	}
	for {
		var soonest time.Time
		for i, pr := range prs {
			if when(pr).IsAnomaly() && (soonest.IsZero() || next[i].Before(soonest)) {
				soonest = next[i]
			}
		}
		select {
		case <-rs.ctx.Done():
			return
		case <-m.cfg.Clock.After(soonest.Sub(m.cfg.Clock.Now())):
		}
		now := m.cfg.Clock.Now()
		for i, pr := range prs {
			if !when(pr).IsAnomaly() || next[i].After(now) {
				continue
			}
			err := m.checkPromise(rs.ctx, rs, pr)
			if rs.ctx.Err() != nil {
				return
			}
			if err != nil {
				m.cfg.Log.Warn("partition: promise failed", "instance", in.rec.ID, "promise", pr.Name, "err", err)
			}
			record(i, err)
			next[i] = m.cfg.Clock.Now().Add(period(pr))
		}
	}
}

func when(pr recipes.Promise) recipes.PromiseWhen {
	if pr.When == "" {
		return recipes.WhenBoth
	}
	return pr.When
}

func period(pr recipes.Promise) time.Duration {
	if p := pr.Period.D(); p > 0 {
		return p
	}
	return 10 * time.Second
}
