package ledger

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/weftgrid/weft/recipes/clock"
)

func TestCheckpointRecordsRootAndAudits(t *testing.T) {
	ctx := context.Background()
	m := newMarket(t, 60)
	l := memLedger(t, m.req)
	if _, err := l.Ingest(ctx, rawsOf([]*Entry{m.ce, m.receipt(t, Usage{CPUMicros: 10}), m.receipt(t, Usage{CPUMicros: 20})})); err != nil {
		t.Fatal(err)
	}
	before, n := l.Root(), uint64(l.Len())
	e, err := l.Checkpoint(ctx)
	if err != nil || e == nil {
		t.Fatalf("checkpoint: %v %v", e, err)
	}
	cp := e.Value().(Checkpoint)
	if !bytes.Equal(cp.Root, before) || cp.Entries != n {
		t.Fatalf("checkpoint %x/%d, want the root %x over %d entries held", cp.Root, cp.Entries, before, n)
	}
	if again, err := l.Checkpoint(ctx); err != nil || again != nil {
		t.Fatalf("checkpoint of an unchanged ledger: %v %v, want none", again, err)
	}
	// The ledger grows: the old checkpoint's root no longer matches the
	// current root, which is expected and no problem.
	if _, err := l.Ingest(ctx, rawsOf([]*Entry{m.receipt(t, Usage{CPUMicros: 30})})); err != nil {
		t.Fatal(err)
	}
	e2, err := l.Checkpoint(ctx)
	if err != nil || e2 == nil || e2.Value().(Checkpoint).Entries != n+2 {
		t.Fatalf("second checkpoint %v %v", e2, err)
	}
	// JSON shows the root in hex and round-trips.
	js, err := json.Marshal(e)
	if err != nil || !strings.Contains(string(js), `"root":"`+hex.EncodeToString(before)+`"`) {
		t.Fatalf("checkpoint JSON %s (%v): want the root in hex", js, err)
	}
	var back Checkpoint
	if b, _ := json.Marshal(cp); json.Unmarshal(b, &back) != nil || !bytes.Equal(back.Root, cp.Root) || back.Entries != cp.Entries {
		t.Fatalf("checkpoint JSON round trip: %+v", back)
	}
	rep := l.Audit()
	if !rep.OK || rep.Checkpoints != 2 {
		t.Fatalf("audit ok %v checkpoints %d problems %+v", rep.OK, rep.Checkpoints, rep.Problems)
	}
	// An auditor proves the node had seen that set: the checkpoint entry is
	// in the ledger, and it names the root of the entries held then.
	p, err := l.Prove(e.CID())
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Verify(); err != nil {
		t.Fatalf("proof of the checkpoint: %v", err)
	}
	// Malformed checkpoints are problems naming the entry.
	short, err := l.Append(ctx, Checkpoint{Root: []byte{1, 2, 3}, Entries: 100})
	if err != nil {
		t.Fatal(err)
	}
	under, err := l.Append(ctx, Checkpoint{Root: before, Entries: 1})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, p := range l.Audit().Problems {
		got[p.CID] = p.Code
	}
	if got[short.CID().String()] != CodeBadCheckpoint || got[under.CID().String()] != CodeBadCheckpoint || len(got) != 2 {
		t.Fatalf("problems %v, want bad_checkpoint for %s and %s only", got, short.CID(), under.CID())
	}
}

// The checkpointer ticks on the ledger's clock (a fake here: one
// checkpoint per interval the clock moves, none while it stands).
func TestCheckpointerAppendsPeriodically(t *testing.T) {
	ctx := context.Background()
	m := newMarket(t, 62)
	fake := clock.NewFake(time.Now())
	l, err := Open(Config{Signer: m.req, Workers: 2, Clock: fake})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if _, err := l.Ingest(ctx, rawsOf([]*Entry{m.ce})); err != nil {
		t.Fatal(err)
	}
	cp := NewCheckpointer(l, 10*time.Minute)
	cp.Start(ctx)
	defer cp.Close()
	waitFor(t, 5*time.Second, "the checkpointer's ticker", func() bool { return fake.Waiters() == 1 })
	if n := l.Audit().Checkpoints; n != 0 {
		t.Fatalf("%d checkpoints before the clock moved", n)
	}
	fake.Advance(10 * time.Minute)
	waitFor(t, 5*time.Second, "a checkpoint", func() bool { return l.Audit().Checkpoints >= 1 })
	if _, err := l.Ingest(ctx, rawsOf([]*Entry{m.receipt(t, Usage{CPUMicros: 1})})); err != nil {
		t.Fatal(err)
	}
	fake.Advance(10 * time.Minute)
	waitFor(t, 5*time.Second, "a checkpoint after the ledger grew", func() bool { return l.Audit().Checkpoints >= 2 })
	cp.Close()
	if r := l.Audit(); !r.OK {
		t.Fatalf("problems %+v", r.Problems)
	}
	// Disabled: Start does nothing.
	off := NewCheckpointer(l, 0)
	off.Start(ctx)
	if err := off.Close(); err != nil {
		t.Fatal(err)
	}
}

// A checkpoint taken while the same node appends other entries counts
// every entry of its author before it: the audit finds no undercounting
// checkpoint (a checkpoint's count used to be read before its append, and
// an entry of its own could come between).
func TestCheckpointRacingAppendsCountsItsAuthorsEntries(t *testing.T) {
	ctx := context.Background()
	l := memLedger(t, deterministicSigner(t, 115))
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 300 {
			if _, err := l.Append(ctx, Grant{To: l.ID(), Amount: uint64(i + 1)}); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	cps := 0
	for running := true; running; {
		select {
		case <-done:
			running = false
		default:
		}
		if e, err := l.Checkpoint(ctx); err != nil {
			t.Fatal(err)
		} else if e != nil {
			cps++
		}
	}
	r := l.Audit()
	for _, p := range r.Problems {
		if p.Code == CodeBadCheckpoint {
			t.Fatalf("%d checkpoints: %s: %s", cps, p.Code, p.Problem)
		}
	}
	if cps < 2 {
		t.Logf("only %d checkpoints raced the appends", cps)
	}
}
