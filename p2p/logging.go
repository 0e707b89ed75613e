package p2p

import (
	"bytes"
	"context"
	"log"
	"log/slog"
)

// newMemberlistLogger maps memberlist's "[LEVEL] memberlist: msg" lines to slog.
func newMemberlistLogger(l *slog.Logger) *log.Logger {
	return log.New(levelWriter{l.With("component", "memberlist")}, "", 0)
}

type levelWriter struct{ l *slog.Logger }

func (w levelWriter) Write(p []byte) (int, error) {
	msg := bytes.TrimSpace(p)
	lvl := slog.LevelInfo
	for _, pre := range []struct {
		tag string
		lvl slog.Level
	}{{"[DEBUG]", slog.LevelDebug}, {"[INFO]", slog.LevelInfo}, {"[WARN]", slog.LevelWarn}, {"[ERR]", slog.LevelError}} {
		if bytes.HasPrefix(msg, []byte(pre.tag)) {
			lvl = pre.lvl
			msg = bytes.TrimSpace(msg[len(pre.tag):])
			break
		}
	}
	msg = bytes.TrimPrefix(msg, []byte("memberlist: "))
	// memberlist warns about every unreachable member; keep those at debug
	// unless they are errors.
	if lvl == slog.LevelWarn {
		lvl = slog.LevelDebug
	}
	w.l.Log(context.Background(), lvl, string(msg))
	return len(p), nil
}
