package ledger

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
)

const crashEnv = "WEFT_LEDGER_CRASH_CHILD"

// TestCrashChild is the child process of TestKill9LosesNoAcknowledgedEntry:
// it appends and ingests as fast as it can, printing "ACK <cid>" once each
// entry is acknowledged (Append/Ingest returned), until it is killed.
func TestCrashChild(t *testing.T) {
	path := os.Getenv(crashEnv)
	if path == "" {
		t.Skip("child process of TestKill9LosesNoAcknowledgedEntry")
	}
	ctx := context.Background()
	me := deterministicSigner(t, 50)
	l, err := Open(Config{Path: path, Signer: me})
	if err != nil {
		fmt.Println("ERR", err)
		os.Exit(2)
	}
	var mu sync.Mutex
	out := bufio.NewWriter(os.Stdout)
	ack := func(c cid.Cid) {
		mu.Lock()
		fmt.Fprintln(out, "ACK", c)
		out.Flush()
		mu.Unlock()
	}
	var wg sync.WaitGroup
	for g := 0; g < 3; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				e, err := l.Append(ctx, Grant{To: me.ID(), Amount: uint64(i)})
				if err != nil {
					fmt.Println("ERR", err)
					os.Exit(2)
				}
				ack(e.CID())
			}
		}()
	}
	// Another author's log arriving in batches, as during a catch-up.
	other := newLogWriter(deterministicSigner(t, 51), t0)
	for {
		batch := make([]*Entry, 64)
		for i := range batch {
			batch[i] = other.next(t, Grant{To: me.ID(), Amount: 1})
		}
		added, err := l.Ingest(ctx, rawsOf(batch))
		if err != nil {
			fmt.Println("ERR", err)
			os.Exit(2)
		}
		for _, e := range added {
			ack(e.CID())
		}
	}
}

func TestKill9LosesNoAcknowledgedEntry(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns a process")
	}
	path := filepath.Join(t.TempDir(), "ledger.db")
	for round := 0; round < 3; round++ {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), crashEnv+"="+path)
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		var acked []string
		sc := bufio.NewScanner(stdout)
		want := 300 + 200*round
		deadline := time.Now().Add(60 * time.Second)
		for sc.Scan() && len(acked) < want && time.Now().Before(deadline) {
			line := sc.Text()
			if c, ok := strings.CutPrefix(line, "ACK "); ok {
				acked = append(acked, c)
			} else if strings.HasPrefix(line, "ERR") {
				t.Fatalf("child: %s", line)
			}
		}
		// Kill while it is still appending.
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		// Acks already printed before the kill count too.
		for sc.Scan() {
			if c, ok := strings.CutPrefix(sc.Text(), "ACK "); ok {
				acked = append(acked, c)
			}
		}
		_ = cmd.Wait()
		if len(acked) == 0 {
			t.Fatal("child acknowledged nothing")
		}
		l, err := Open(Config{Path: path})
		if err != nil {
			t.Fatalf("round %d: reopen after kill -9: %v", round, err)
		}
		for _, s := range acked {
			c, err := cid.Decode(s)
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := l.Get(c); !ok {
				t.Fatalf("round %d: acknowledged entry %s lost (of %d acked)", round, c, len(acked))
			}
		}
		if r := l.Audit(); !r.OK {
			t.Fatalf("round %d: audit after kill -9: %+v", round, r.Problems[:min(3, len(r.Problems))])
		}
		t.Logf("round %d: %d acknowledged entries, all present; %d entries stored", round, len(acked), l.Len())
		l.Close()
	}
}
