package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"

	"github.com/weftgrid/weft/cmd/weft/internal/config"

	"github.com/weftgrid/weft/ledger"
	"github.com/weftgrid/weft/ledger/settle"
	"github.com/weftgrid/weft/scheduler"
	"github.com/weftgrid/weft/scheduler/schedtest"
)

// signers returns a ledger and a market signer of one new key.
func signers(t *testing.T) (*ledger.Signer, *scheduler.Signer) {
	t.Helper()
	priv, _, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ledger.NewSigner(priv)
	if err != nil {
		t.Fatal(err)
	}
	m, err := scheduler.NewSigner(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s, m
}

// runCLI runs the weft CLI in-process and returns stdout, stderr and the error.
func runCLI(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	root := NewRoot(&out, &errOut)
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	return out.String(), errOut.String(), err
}

func exitCode(err error) int {
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	if err != nil {
		return 1
	}
	return 0
}

// A data dir with a ledger file and no running node: every ledger command
// reads the file directly.
func TestLedgerCommandsOnStoppedNode(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("WEFT_DATA_DIR", dir)
	ctx := context.Background()
	req, reqMarket := signers(t)
	prov, provMarket := signers(t)
	lp, err := ledger.Open(ledger.Config{Path: filepath.Join(dir, config.LedgerFile), Signer: prov})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now().Add(-time.Hour).Truncate(time.Minute)
	// A contract as the market records it, with the signed award and
	// acceptance as evidence (the audit checks them).
	mc, err := schedtest.Contract(reqMarket, provMarket, "web", 1, start)
	if err != nil {
		t.Fatal(err)
	}
	c := settle.Contract(mc, time.Minute)
	ce, err := lp.AppendContract(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	var receipt *ledger.Entry
	for i := uint64(0); i < 3; i++ {
		from, to := c.SliceBounds(i)
		if receipt, err = lp.Append(ctx, ledger.MakeReceipt(ce.CID(), c, i, from, to, ledger.Usage{CPUMicros: 1500})); err != nil {
			t.Fatal(err)
		}
	}
	lp.Close()

	out, _, err := runCLI(t, "--data-dir", dir, "ledger", "audit", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var rep struct {
		OK       bool              `json:"ok"`
		Entries  int               `json:"entries"`
		Receipts int               `json:"receipts"`
		Root     string            `json:"root"`
		Problems []json.RawMessage `json:"problems"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !rep.OK || rep.Entries != 4 || rep.Receipts != 3 || len(rep.Root) != 64 || rep.Problems == nil {
		t.Fatalf("audit: %s", out)
	}

	exp := filepath.Join(t.TempDir(), "ledger.jsonl")
	if _, _, err := runCLI(t, "--data-dir", dir, "ledger", "export", "--out", exp); err != nil {
		t.Fatal(err)
	}
	out, _, err = runCLI(t, "ledger", "audit", "--file", exp, "--json")
	if err != nil || !strings.Contains(out, rep.Root) {
		t.Fatalf("offline audit: %v\n%s", err, out)
	}
	// One byte changed in the last record: the audit fails and names the entry.
	b, _ := os.ReadFile(exp)
	i := bytes.LastIndex(b, []byte(`"entry":"`)) + 30
	b[i] ^= 0x01
	if b[i] == '"' || b[i] == '\\' {
		b[i] ^= 0x03
	}
	os.WriteFile(exp, b, 0o600)
	out, _, err = runCLI(t, "ledger", "audit", "--file", exp, "--json")
	if exitCode(err) != 1 || !strings.Contains(out, `"ok": false`) || !strings.Contains(out, receipt.CID().String()) {
		t.Fatalf("tampered export: code %d\n%s", exitCode(err), out)
	}

	out, _, err = runCLI(t, "--data-dir", dir, "ledger", "statement", "--requester", req.ID().String(), "--csv")
	if err != nil || strings.Count(out, "\n") != 4 || !strings.Contains(out, "unconfirmed") {
		t.Fatalf("statement csv: %v\n%s", err, out)
	}
	out, _, err = runCLI(t, "--data-dir", dir, "ledger", "statement", "--provider", prov.ID().String(), "--json")
	if want := fmt.Sprintf(`"unconfirmed": %d`, 3*ledger.Amount(c.Price, ledger.Usage{CPUMicros: 1500})); err != nil || !strings.Contains(out, want) {
		t.Fatalf("statement json: %v\n%s", err, out)
	}
	if out, _, err = runCLI(t, "--data-dir", dir, "ledger", "statement", "--provider", prov.ID().String()); err != nil || !strings.Contains(out, "TOTAL") {
		t.Fatalf("statement table: %v\n%s", err, out)
	}

	proof := filepath.Join(t.TempDir(), "proof.json")
	if _, _, err := runCLI(t, "--data-dir", dir, "ledger", "prove", receipt.CID().String(), "--out", proof); err != nil {
		t.Fatal(err)
	}
	if _, _, err := runCLI(t, "ledger", "verify-proof", proof); err != nil {
		t.Fatalf("verify-proof: %v", err)
	}
	pb, _ := os.ReadFile(proof)
	pb = bytes.Replace(pb, []byte(rep.Root), []byte(strings.Repeat("0", 64)), 1)
	os.WriteFile(proof, pb, 0o600)
	if _, _, err := runCLI(t, "ledger", "verify-proof", proof); exitCode(err) != 1 {
		t.Fatalf("verify-proof of a wrong root: %v", err)
	}
	if out, _, err := runCLI(t, "--data-dir", dir, "ledger", "balance", "--json"); err != nil || !strings.Contains(out, prov.ID().String()) {
		t.Fatalf("balance: %v\n%s", err, out)
	}
}
