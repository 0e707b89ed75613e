package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/spf13/cobra"

	"github.com/weftgrid/weft/cmd/weft/internal/api"
	"github.com/weftgrid/weft/cmd/weft/internal/config"
	"github.com/weftgrid/weft/ledger"
	"github.com/weftgrid/weft/ledger/settle"
	"github.com/weftgrid/weft/recipes/atomicfile"
)

func init() { register(60, newLedgerCmd) }

func newLedgerCmd(g *Globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "ledger",
		Short: "Audit, export, prove and sum the usage ledger",
		Long: `The ledger holds every contract, receipt, acknowledgement, dispute, grant
and checkpoint of the grid, each signed by its author. These commands read
the ledger of the node in --data-dir: through the running node's API, or,
when no node runs there, straight from its ledger file. 'ledger audit --file'
and 'ledger verify-proof' need no node at all.

  weft ledger audit --json                 # verify everything, print the root
  weft ledger export --out ledger.jsonl    # a self-authenticating copy
  weft ledger audit --file ledger.jsonl    # offline audit of a copy
  weft ledger statement --requester PEER_ID --csv
  weft ledger balance                      # earned − spent + grants, per peer
  weft ledger prove CID --out proof.json && weft ledger verify-proof proof.json

Money in JSON and CSV (amounts, balances, prices) is integer pico-credits
(1 credit = 10^12), fine enough that a one-second slice of a lightly loaded
instance is not rounded to zero; tables show credits with six decimals.`,
	}
	cmd.AddCommand(newLedgerAuditCmd(g), newLedgerExportCmd(g), newLedgerStatementCmd(g), newLedgerBalanceCmd(g),
		newLedgerProveCmd(g), newLedgerVerifyProofCmd(g), newLedgerEntriesCmd(g), newLedgerHeadsCmd(g), newLedgerGrantCmd(g))
	return cmd
}

// ledgerSource reads the ledger through the node's API or, when no node
// runs in the data dir, from its file (read-only).
type ledgerSource struct {
	client *api.Client
	local  *ledger.Ledger
}

func openLedgerSource(ctx context.Context, g *Globals) (*ledgerSource, error) {
	if c, err := api.NewClientFromDataDir(g.DataDir); err == nil {
		cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		_, err := c.LedgerHeads(cctx)
		cancel()
		if err == nil {
			return &ledgerSource{client: c}, nil
		}
	}
	path := filepath.Join(g.DataDir, config.LedgerFile)
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("no running node and no ledger file in %s (start one with: weft --data-dir %s node)", g.DataDir, g.DataDir)
	}
	cfg := ledger.DefaultConfig(path)
	cfg.ReadOnly = true
	cfg.ContractCheck = settle.CheckContract
	l, err := ledger.Open(cfg)
	if err != nil {
		return nil, err
	}
	return &ledgerSource{local: l}, nil
}

func (s *ledgerSource) Close() error {
	if s.local != nil {
		return s.local.Close()
	}
	return nil
}

func printReport(g *Globals, r ledger.Report) error {
	if g.JSON {
		if err := g.PrintJSON(r); err != nil {
			return err
		}
	} else {
		w := g.Out()
		fmt.Fprintf(w, "root      %s\nentries   %d (%d authors)\ncontracts %d\nreceipts  %d (%d acked, %s credits; %d unconfirmed, %d disputed)\n",
			r.Root, r.Entries, r.Authors, r.Contracts, r.Receipts, r.Acked, ledger.Credits(r.AckedAmount), len(r.Unconfirmed), len(r.Disputed))
		fmt.Fprintf(w, "unbilled  %d slices (ended more than %s ago without a receipt)\nlate      %d receipts\n",
			r.Unbilled, time.Duration(r.GraceNanos), r.Late)
		for _, u := range r.UnbilledContracts {
			fmt.Fprintf(w, "UNBILLED  contract %s (instance %s, epoch %d): %d slices from slice %d\n", u.Contract, u.InstanceID, u.Epoch, u.Slices, u.First)
		}
		if len(r.UnauthorizedGrants) > 0 {
			fmt.Fprintf(w, "unauthorized grants %d (counted in no balance)\n", len(r.UnauthorizedGrants))
		}
		if len(r.Ignored) > 0 {
			fmt.Fprintf(w, "ignored   %d entries (by authors with no standing for what they name; counted nowhere)\n", len(r.Ignored))
		}
		if len(r.Equivocations) > 0 {
			fmt.Fprintf(w, "equivocations %d\n", len(r.Equivocations))
		}
		for _, d := range r.Disputed {
			fmt.Fprintf(w, "disputed  %s: %s\n", d.Receipt, d.Reason)
		}
		if r.OK {
			fmt.Fprintln(w, "ok: every signature, link and receipt checks out")
		}
		for _, p := range r.Problems {
			fmt.Fprintf(w, "PROBLEM %s %s: %s\n", p.CID, p.Code, p.Problem)
		}
	}
	if !r.OK {
		return withExitCode(1, fmt.Errorf("ledger audit: %d problem(s)", len(r.Problems)))
	}
	return nil
}

func newLedgerAuditCmd(g *Globals) *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Verify every entry, link and receipt; print the root hash",
		Long: `Verify every signature and hash link, check each receipt against its
contract (amount = price × usage, usage within the caps, no overlapping
slices, nothing billed under an epoch after a newer one began, the
acknowledgement matches), list unconfirmed and disputed receipts and
equivocations, and print the Merkle root over the whole ledger (the same set
of entries gives the same root on every node).

With --file it audits an export file offline (no node needed).
It also counts unbilled slices — slices of a contract's billable span that
ended more than the billing grace (30 s) ago with no receipt — and late
receipts (entered after the grace); an export file is counted as of its
newest entry's time, a node as of now.

--json prints {ok, entries, receipts, root, problems:[{cid, code, problem}],
unbilled, unbilled_contracts, late, unauthorized_grants, ignored, ...}; amounts are
pico-credits. The exit status is 1 when there is any problem.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if file != "" {
				f, err := os.Open(file)
				if err != nil {
					return err
				}
				defer f.Close()
				r, err := ledger.AuditExport(f, ledger.AuditOptions{ContractCheck: settle.CheckContract})
				if err != nil {
					return err
				}
				return printReport(g, r)
			}
			src, err := openLedgerSource(cmd.Context(), g)
			if err != nil {
				return err
			}
			defer src.Close()
			var r ledger.Report
			if src.client != nil {
				if err := src.client.Get(cmd.Context(), "/v1/ledger/audit", &r); err != nil {
					return err
				}
			} else {
				r = src.local.Audit()
			}
			return printReport(g, r)
		},
	}
	cmd.Flags().StringVar(&file, "file", "", "audit this export file offline instead of the node's ledger")
	return cmd
}

// writeFileAtomic writes via fn to a temporary file and renames it to path.
func writeFileAtomic(path string, fn func(io.Writer) error) error {
	if path == "-" {
		return fn(os.Stdout)
	}
	return atomicfile.Write(path, fn)
}

func newLedgerExportCmd(g *Globals) *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "export --out FILE",
		Short: "Write the whole ledger to a self-authenticating file",
		Long: `Write every entry to FILE (JSON lines: a header with the root, then one
{cid, entry} record per entry, the entry being its signed bytes in base64).
'weft ledger audit --file FILE' verifies it offline. --out - writes to stdout.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return errors.New("--out FILE is required")
			}
			src, err := openLedgerSource(cmd.Context(), g)
			if err != nil {
				return err
			}
			defer src.Close()
			var n int
			err = writeFileAtomic(out, func(w io.Writer) error {
				cw := &countWriter{w: w}
				defer func() { n = cw.n }()
				if src.client != nil {
					return src.client.Get(cmd.Context(), "/v1/ledger/export", io.Writer(cw))
				}
				return src.local.Export(cw)
			})
			if err != nil {
				return err
			}
			if g.JSON && out != "-" {
				return g.PrintJSON(map[string]any{"out": out, "bytes": n})
			}
			if out != "-" {
				fmt.Fprintf(g.Err(), "wrote %s (%d bytes)\n", out, n)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "file to write (- for stdout)")
	return cmd
}

type countWriter struct {
	w io.Writer
	n int
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += n
	return n, err
}

func newLedgerStatementCmd(g *Globals) *cobra.Command {
	var requester, provider, from, to string
	var period time.Duration
	var csvOut bool
	cmd := &cobra.Command{
		Use:   "statement (--requester PEER_ID | --provider PEER_ID)",
		Short: "List a requester's or provider's receipts per period",
		Long: `List every receipt of the contracts where PEER_ID is the requester (what
it pays) or the provider (what it earns), with usage, amount and status
(acked, disputed, unconfirmed), summed per period (--period, default 24h)
and in total. Table by default; --json for the full statement; --csv for one
row per receipt. Amounts are pico-credits (1 credit = 10^12) in JSON and
CSV, credits in the table; usage is CPU microseconds, byte-seconds and bytes.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if (requester == "") == (provider == "") {
				return errors.New("give exactly one of --requester PEER_ID or --provider PEER_ID")
			}
			role, who := ledger.RoleRequester, requester
			if provider != "" {
				role, who = ledger.RoleProvider, provider
			}
			p, err := peer.Decode(who)
			if err != nil {
				return fmt.Errorf("peer ID %q: %w", who, err)
			}
			var ft, tt time.Time
			if from != "" {
				if ft, err = time.Parse(time.RFC3339, from); err != nil {
					return fmt.Errorf("--from: %w", err)
				}
			}
			if to != "" {
				if tt, err = time.Parse(time.RFC3339, to); err != nil {
					return fmt.Errorf("--to: %w", err)
				}
			}
			src, err := openLedgerSource(cmd.Context(), g)
			if err != nil {
				return err
			}
			defer src.Close()
			var st ledger.Statement
			if src.client != nil {
				q := url.Values{role.String(): {p.String()}}
				if from != "" {
					q.Set("from", from)
				}
				if to != "" {
					q.Set("to", to)
				}
				if period > 0 {
					q.Set("period", period.String())
				}
				if err := src.client.Get(cmd.Context(), "/v1/ledger/statement?"+q.Encode(), &st); err != nil {
					return err
				}
			} else {
				st = src.local.Statement(role, p, ft, tt, period)
			}
			switch {
			case csvOut:
				return ledger.WriteCSV(g.Out(), st)
			case g.JSON:
				return g.PrintJSON(st)
			default:
				return ledger.WriteTable(g.Out(), st)
			}
		},
	}
	cmd.Flags().StringVar(&requester, "requester", "", "statement of what this peer pays")
	cmd.Flags().StringVar(&provider, "provider", "", "statement of what this peer earns")
	cmd.Flags().StringVar(&from, "from", "", "only periods starting at or after this RFC 3339 time")
	cmd.Flags().StringVar(&to, "to", "", "only periods starting before this RFC 3339 time")
	cmd.Flags().DurationVar(&period, "period", 24*time.Hour, "length of the periods summed")
	cmd.Flags().BoolVar(&csvOut, "csv", false, "print one CSV row per receipt")
	return cmd
}

func newLedgerBalanceCmd(g *Globals) *cobra.Command {
	return &cobra.Command{
		Use:   "balance [PEER_ID]",
		Short: "Show balances: earned as provider − spent as requester + grants",
		Long: `Show each peer's balance from acknowledged receipts and grants, plus what is
pending (receipts not yet acknowledged). Without PEER_ID, every peer that
appears in a contract or grant. Providers refuse bids from requesters whose
balance is below their [ledger] credit_limit. Amounts are credits with six
decimals in the table, pico-credits (1 credit = 10^12) in JSON.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var who peer.ID
			if len(args) == 1 {
				p, err := peer.Decode(args[0])
				if err != nil {
					return fmt.Errorf("peer ID %q: %w", args[0], err)
				}
				who = p
			}
			src, err := openLedgerSource(cmd.Context(), g)
			if err != nil {
				return err
			}
			defer src.Close()
			var bs []ledger.Balance
			switch {
			case src.client != nil:
				path := "/v1/ledger/balance"
				if who != "" {
					path += "?peer=" + url.QueryEscape(who.String())
				}
				if err := src.client.Get(cmd.Context(), path, &bs); err != nil {
					return err
				}
			case who != "":
				bs = []ledger.Balance{src.local.Balance(who)}
			default:
				bs = src.local.Balances()
			}
			if g.JSON {
				return g.PrintJSON(bs)
			}
			tw := tabwriter.NewWriter(g.Out(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "PEER\tBALANCE\tEARNED\tSPENT\tGRANTED\tPENDING+\tPENDING-")
			for _, b := range bs {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", b.Peer, ledger.SignedCredits(b.Balance), ledger.Credits(b.Earned), ledger.Credits(b.Spent),
					ledger.Credits(b.Granted), ledger.Credits(b.PendingEarned), ledger.Credits(b.PendingSpent))
			}
			return tw.Flush()
		},
	}
}

func newLedgerProveCmd(g *Globals) *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "prove CID --out FILE",
		Short: "Write an inclusion proof of an entry against the current root",
		Long: `Write a proof (JSON: the entry's CID and signed bytes, its leaf index, the
tree size, the root and the RFC 6962 audit path) that the entry CID is in the
ledger whose root is printed by 'weft ledger audit'. 'weft ledger
verify-proof FILE' checks it offline.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cid.Decode(args[0])
			if err != nil {
				return fmt.Errorf("CID %q: %w", args[0], err)
			}
			if out == "" {
				return errors.New("--out FILE is required")
			}
			src, err := openLedgerSource(cmd.Context(), g)
			if err != nil {
				return err
			}
			defer src.Close()
			var p *ledger.InclusionProof
			if src.client != nil {
				p = new(ledger.InclusionProof)
				if err := src.client.Get(cmd.Context(), "/v1/ledger/proof/"+c.String(), p); err != nil {
					return err
				}
			} else if p, err = src.local.Prove(c); err != nil {
				return err
			}
			if err := writeFileAtomic(out, func(w io.Writer) error {
				enc := json.NewEncoder(w)
				enc.SetIndent("", "  ")
				return enc.Encode(p)
			}); err != nil {
				return err
			}
			if g.JSON {
				return g.PrintJSON(map[string]any{"out": out, "cid": p.CID, "root": p.Root, "index": p.Index, "size": p.Size})
			}
			fmt.Fprintf(g.Out(), "wrote %s: %s is leaf %d of %d under root %s\n", out, p.CID, p.Index, p.Size, p.Root)
			return nil
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "file to write the proof to")
	return cmd
}

func newLedgerVerifyProofCmd(g *Globals) *cobra.Command {
	return &cobra.Command{
		Use:   "verify-proof FILE",
		Short: "Check an inclusion proof offline (exit 0 when it holds)",
		Long: `Check that the proof in FILE holds: the entry's bytes hash to its CID and
carry a valid signature, and the audit path leads from the entry's leaf to
the root the proof names. Needs no node. Exit status 0 when the proof holds,
1 otherwise.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := ledger.ReadProof(args[0])
			if err == nil {
				err = p.Verify()
			}
			res := map[string]any{"ok": err == nil}
			if p != nil {
				res["cid"], res["root"], res["index"], res["size"] = p.CID, p.Root, p.Index, p.Size
			}
			if err != nil {
				res["error"] = err.Error()
			}
			if g.JSON {
				if perr := g.PrintJSON(res); perr != nil {
					return perr
				}
			} else if err == nil {
				fmt.Fprintf(g.Out(), "ok: %s is in the ledger with root %s (leaf %d of %d)\n", p.CID, p.Root, p.Index, p.Size)
			}
			if err != nil {
				return withExitCode(1, fmt.Errorf("proof does not hold: %w", err))
			}
			return nil
		},
	}
}

func newLedgerEntriesCmd(g *Globals) *cobra.Command {
	var kind string
	var limit int
	cmd := &cobra.Command{
		Use:   "entries",
		Short: "List recent entries (newest first), optionally of one kind",
		Long: `List the newest entries with their decoded bodies. --kind is one of
contract, receipt, ack, dispute, grant, checkpoint. Needs a running node.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.Client()
			if err != nil {
				return err
			}
			if kind != "" {
				if _, err := ledger.ParseKind(kind); err != nil {
					return err
				}
			}
			a, err := c.LedgerEntries(cmd.Context(), kind, limit)
			if err != nil {
				return err
			}
			if g.JSON {
				return g.PrintJSON(a.Raw)
			}
			tw := tabwriter.NewWriter(g.Out(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "TIME\tKIND\tAUTHOR\tSEQ\tCID")
			for _, e := range a.Value {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\n", e.Time.Format(time.RFC3339Nano), e.Kind, e.Author, e.Seq, e.CID)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&kind, "kind", "", "only entries of this kind")
	cmd.Flags().IntVar(&limit, "limit", 50, "at most this many entries")
	return cmd
}

func newLedgerHeadsCmd(g *Globals) *cobra.Command {
	return &cobra.Command{
		Use:   "heads",
		Short: "Show the root and each author's log head",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			src, err := openLedgerSource(cmd.Context(), g)
			if err != nil {
				return err
			}
			defer src.Close()
			var h api.LedgerHeads
			if src.client != nil {
				a, err := src.client.LedgerHeads(cmd.Context())
				if err != nil {
					return err
				}
				h = a.Value
			} else {
				h.Root, h.Entries, h.Heads = src.local.RootHex(), src.local.Len(), src.local.Heads()
			}
			if g.JSON {
				return g.PrintJSON(h)
			}
			fmt.Fprintf(g.Out(), "root %s\nentries %d\n", h.Root, h.Entries)
			tw := tabwriter.NewWriter(g.Out(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "AUTHOR\tCONTIG\tMAX\tCOUNT")
			for _, x := range h.Heads {
				fmt.Fprintf(tw, "%s\t%d\t%d\t%d\n", x.Author, x.Contig, x.Max, x.Count)
			}
			return tw.Flush()
		},
	}
}

func newLedgerGrantCmd(g *Globals) *cobra.Command {
	var memo string
	cmd := &cobra.Command{
		Use:   "grant PEER_ID CREDITS",
		Short: "Issue credits to a peer (a private grid's founders)",
		Long: `Append a signed grant of CREDITS (a decimal number of credits, at most six
decimals: 25, 0.5) to PEER_ID. Grants count in balances only when this node is
a granter: on the public grid a peer in [ledger] granters, on a private grid
its founder or a granter the grid file names. A node that is not a granter
refuses (exit status 1) and writes nothing. The grant entry, like every money
figure in JSON, records the amount in pico-credits (1 credit = 10^12). Needs a
running node.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := peer.Decode(args[0]); err != nil {
				return fmt.Errorf("peer ID %q: %w", args[0], err)
			}
			amount, err := ledger.ParseCredits(args[1])
			if err != nil || amount == 0 {
				return fmt.Errorf("CREDITS %q: a positive number of credits, at most six decimals (25, 0.5)", args[1])
			}
			c, err := g.Client()
			if err != nil {
				return err
			}
			var e map[string]any
			if err := c.Post(cmd.Context(), "/v1/ledger/grants", api.Grant{To: args[0], Amount: amount, Memo: memo}, &e); err != nil {
				return err
			}
			if g.JSON {
				return g.PrintJSON(e)
			}
			fmt.Fprintf(g.Out(), "granted %s credits to %s (entry %v)\n", ledger.Credits(amount), args[0], e["cid"])
			return nil
		},
	}
	cmd.Flags().StringVar(&memo, "memo", "", "free text stored with the grant")
	return cmd
}
