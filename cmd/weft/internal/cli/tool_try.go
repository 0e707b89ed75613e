package cli

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"syscall"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"
)

// newToolTryCmd tries one operation a partition's sandbox should refuse
// (or allow) and says what happened, so that an operator can check the
// sandbox from inside a partition (a recipe's command or command promise):
// "ok" (exit 0) or "denied: ERROR" (exit 1).
func newToolTryCmd(g *Globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "try",
		Short: "Try an operation (read, bind, signal, ptrace) and say whether it was allowed",
		Long: `Try one operation and print "ok" (exit 0) or "denied: ERROR" (exit 1). Run
from a recipe, it shows what the partition's sandbox allows:

  weft tool try read PATH       open PATH for reading
  weft tool try bind HOST:PORT  bind a TCP listener
  weft tool try signal PID      send signal 0 (no effect) to PID
  weft tool try ptrace PID      attach to PID with ptrace (and detach)`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			err := tryOp(args[0], args[1])
			if err != nil {
				fmt.Fprintf(g.Out(), "denied: %v\n", err)
				return withExitCode(1, nil)
			}
			fmt.Fprintln(g.Out(), "ok")
			return nil
		},
	}
	return cmd
}

func tryOp(op, arg string) error {
	switch op {
	case "read":
		f, err := os.Open(arg)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = f.Read(make([]byte, 1))
		if err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		return nil
	case "bind":
		ln, err := net.Listen("tcp", arg)
		if err != nil {
			return err
		}
		return ln.Close()
	case "signal", "ptrace":
		pid, err := strconv.Atoi(arg)
		if err != nil || pid <= 0 {
			return fmt.Errorf("bad pid %q", arg)
		}
		if op == "signal" {
			return syscall.Kill(pid, 0)
		}
		if err := unix.PtraceAttach(pid); err != nil {
			return err
		}
		var ws unix.WaitStatus
		_, _ = unix.Wait4(pid, &ws, unix.WALL, nil)
		return unix.PtraceDetach(pid)
	}
	return fmt.Errorf("unknown operation %q (read, bind, signal, ptrace)", op)
}
