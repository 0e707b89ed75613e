package cli

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/weftgrid/weft/cmd/weft/internal/api"
)

// logFlags are the flags of the log commands.
type logFlags struct {
	process string
	follow  bool
	since   time.Duration
	tail    int
}

func (f *logFlags) add(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.process, "process", "", "only this process's log")
	fl.BoolVarP(&f.follow, "follow", "f", false, "keep printing what is written next, until interrupted")
	fl.DurationVar(&f.since, "since", 0, "only the logs written to within this duration (lines carry no time: a log's last write decides)")
	fl.IntVar(&f.tail, "tail", 0, "only the last N lines of each log (0: all)")
}

func (f *logFlags) query() (api.LogQuery, error) {
	if f.tail < 0 || f.since < 0 {
		return api.LogQuery{}, fmt.Errorf("--tail and --since must not be negative")
	}
	return api.LogQuery{Process: f.process, Tail: f.tail, Since: f.since, Follow: f.follow}, nil
}

const logsLong = `Each process's lines follow a "==> PROCESS <==" line. --tail N prints
the last N lines of each log, --process one process's, --follow keeps
printing what is written next (until interrupted), --since DURATION only
the logs written to within it (log lines carry no time of their own).
Logs stay readable while the host keeps the instance's partition: a
stopped instance's too.`

// newInstanceLogsCmd is weft instance logs (and, with what = "job", weft job logs).
func newInstanceLogsCmd(g *Globals, what string) *cobra.Command {
	var f logFlags
	cmd := &cobra.Command{
		Use:   "logs NAME [--process P] [--follow] [--since DURATION] [--tail N]",
		Short: "Print the logs of a " + what + " you requested, read from its host over the grid",
		Long: `Print the logs (stdout and stderr) of a ` + what + ` this node requested (or
guards), wherever it runs: the node asks the host over a libp2p stream,
and the host serves them only to the ` + what + `'s requester and its delegates,
from files it opens beneath the partition's log directory.

` + logsLong + `

With --json, one JSON object per line: {"process", "data"}.`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completeInstances(g),
		RunE: func(cmd *cobra.Command, args []string) error {
			q, err := f.query()
			if err != nil {
				return err
			}
			q.JSON = g.JSON
			c, err := g.Client()
			if err != nil {
				return err
			}
			if err := c.InstanceLogs(cmd.Context(), args[0], q, g.Out()); err != nil {
				if cmd.Context().Err() != nil && f.follow {
					return nil
				}
				return notFound(err, what, "weft "+what+" list")
			}
			return nil
		},
	}
	f.add(cmd)
	return cmd
}

// partitionLogs prints a local instance's logs (weft partition logs).
func partitionLogs(cmd *cobra.Command, g *Globals, id string, f *logFlags) error {
	q, err := f.query()
	if err != nil {
		return err
	}
	c, err := g.Client()
	if err != nil {
		return err
	}
	hint := func(err error) error {
		if f.process != "" {
			return fmt.Errorf("%w\n(its processes: weft partition show %s)", err, id)
		}
		return notFound(err, "local instance", "weft partition list")
	}
	if !g.JSON {
		if err := c.LocalLogs(cmd.Context(), id, q, g.Out()); err != nil {
			if cmd.Context().Err() != nil && f.follow {
				return nil
			}
			return hint(err)
		}
		return nil
	}
	// --json: one object, {id, processes: [{name, output}]}, the output
	// being the log's last MiB (or what --tail selects).
	q.JSON, q.Follow = true, false
	var buf bytes.Buffer
	if err := c.LocalLogs(cmd.Context(), id, q, &buf); err != nil {
		return hint(err)
	}
	logs := []logJSON{}
	sc := bufio.NewScanner(&buf)
	sc.Buffer(make([]byte, 1<<16), 1<<22)
	for sc.Scan() {
		var l struct{ Process, Data string }
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			return fmt.Errorf("partition logs: unexpected answer from the node: %w", err)
		}
		if n := len(logs); n == 0 || logs[n-1].Name != l.Process {
			logs = append(logs, logJSON{Name: l.Process})
		}
		last := &logs[len(logs)-1]
		last.Output += l.Data
		if len(last.Output) > maxLogJSON {
			last.Output = last.Output[len(last.Output)-maxLogJSON:]
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	return g.PrintJSON(map[string]any{"id": id, "processes": logs})
}
