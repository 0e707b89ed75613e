package ledger

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sync"
	"time"
)

// Checkpoint appends a checkpoint of the ledger as this node holds it now:
// the root over every entry held and their number, signed into this node's
// log. With `ledger prove` on the checkpoint entry, anyone can later show
// that this node had seen that set by the checkpoint's time. It appends
// nothing and returns nil when nothing but checkpoints (this node's or
// other nodes') was added since this node's last checkpoint: an idle grid
// does not fill with checkpoints answering each other.
func (l *Ledger) Checkpoint(ctx context.Context) (*Entry, error) {
	if l.cfg.Signer == nil || l.cfg.ReadOnly {
		return nil, fmt.Errorf("%w: read-only ledger", ErrInvalid)
	}
	var others int
	// The count and root are taken with this node's log locked, so that
	// no entry of its own is appended between them and the checkpoint
	// (the audit requires a checkpoint to count every earlier entry of its
	// author).
	e, err := l.appendWith(ctx, func() (any, bool) {
		l.mu.Lock()
		defer l.mu.Unlock()
		n := uint64(l.set.Len())
		others = l.set.Len() - l.set.nChecks
		if tip := l.set.Tip(l.cfg.Signer.ID()); tip != nil && tip.Kind == KindCheckpoint {
			if tip.id == l.cpID {
				// Only checkpoints were added since ours was taken.
				if others == l.cpOthers {
					return nil, false
				}
			} else if tip.Value().(Checkpoint).Entries+1 == n {
				// Taken before a restart: only it was added since.
				return nil, false
			}
		}
		return Checkpoint{Root: append([]byte(nil), l.set.Root()...), Entries: n}, true
	})
	if err == nil && e != nil {
		l.mu.Lock()
		l.cpID, l.cpOthers = e.id, others
		l.mu.Unlock()
	}
	return e, err
}

// checkpointProblems checks a checkpoint's own consistency. Its root is not
// compared with the current root (the ledger grows after it); what must
// hold is that it is a root (32 bytes) and that the author had seen at least
// its own earlier entries (Entries ≥ Seq−1).
func checkpointProblems(e *Entry, cp Checkpoint) []Problem {
	var out []Problem
	if len(cp.Root) != sha256.Size {
		out = append(out, problem(e, CodeBadCheckpoint, "root of %d bytes, want %d", len(cp.Root), sha256.Size))
	}
	if cp.Entries < e.Seq-1 {
		out = append(out, problem(e, CodeBadCheckpoint, "counts %d entries, fewer than the author's own %d earlier entries", cp.Entries, e.Seq-1))
	}
	return out
}

// Checkpointer appends a checkpoint at a fixed interval (see
// Ledger.Checkpoint).
type Checkpointer struct {
	l        *Ledger
	interval time.Duration
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	once     sync.Once
}

// NewCheckpointer returns a checkpointer over l; interval ≤ 0 makes Start
// do nothing.
func NewCheckpointer(l *Ledger, interval time.Duration) *Checkpointer {
	return &Checkpointer{l: l, interval: interval}
}

// Start runs the loop until Close or ctx ends.
func (c *Checkpointer) Start(ctx context.Context) {
	if c.interval <= 0 {
		return
	}
	ctx, c.cancel = context.WithCancel(ctx)
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		t := c.l.cfg.Clock.NewTicker(c.interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C():
				if e, err := c.l.Checkpoint(ctx); err != nil && ctx.Err() == nil {
					c.l.log.Warn("ledger: checkpoint", "err", err)
				} else if e != nil {
					c.l.log.Debug("ledger: checkpoint", "cid", e.CID(), "entries", e.Value().(Checkpoint).Entries)
				}
			}
		}
	}()
}

// Close stops the loop and waits for it. Idempotent.
func (c *Checkpointer) Close() error {
	c.once.Do(func() {
		if c.cancel != nil {
			c.cancel()
		}
		c.wg.Wait()
	})
	return nil
}

// checkpointJSON is the JSON view of a checkpoint: the root in hex, like
// every other root weft prints.
type checkpointJSON struct {
	Root    string `json:"root"`
	Entries uint64 `json:"entries"`
}

// MarshalJSON renders the root in hex.
func (c Checkpoint) MarshalJSON() ([]byte, error) {
	return json.Marshal(checkpointJSON{Root: hex.EncodeToString(c.Root), Entries: c.Entries})
}

// UnmarshalJSON is the inverse of MarshalJSON.
func (c *Checkpoint) UnmarshalJSON(b []byte) error {
	var j checkpointJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	root, err := hex.DecodeString(j.Root)
	if err != nil {
		return fmt.Errorf("%w: checkpoint root: %w", ErrMalformed, err)
	}
	c.Root, c.Entries = root, j.Entries
	return nil
}
