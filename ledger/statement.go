package ledger

import (
	"encoding/csv"
	"fmt"
	"io"
	"math"
	"math/bits"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// Role is a party's side of a contract.
type Role uint8

// Roles.
const (
	// RoleRequester pays.
	RoleRequester Role = iota + 1
	// RoleProvider earns.
	RoleProvider
)

// String returns "requester" or "provider".
func (r Role) String() string {
	switch r {
	case RoleRequester:
		return "requester"
	case RoleProvider:
		return "provider"
	}
	return "role?"
}

// Receipt statuses in statements.
const (
	StatusAcked       = "acked"
	StatusDisputed    = "disputed"
	StatusUnconfirmed = "unconfirmed"
)

// StatementLine is one receipt in a statement.
type StatementLine struct {
	From      time.Time `json:"from"`
	To        time.Time `json:"to"`
	Instance  string    `json:"instance_id"`
	Request   string    `json:"request,omitempty"`
	Contract  string    `json:"contract"`
	Receipt   string    `json:"receipt"`
	Requester string    `json:"requester"`
	Provider  string    `json:"provider"`
	Epoch     uint64    `json:"epoch"`
	Slice     uint64    `json:"slice"`
	Usage     Usage     `json:"usage"`
	Amount    uint64    `json:"amount"`
	Status    string    `json:"status"`
}

// PeriodTotal sums a statement's receipts over one period.
type PeriodTotal struct {
	From        time.Time `json:"from"`
	To          time.Time `json:"to"`
	Receipts    int       `json:"receipts"`
	Acked       uint64    `json:"acked"`
	Disputed    uint64    `json:"disputed"`
	Unconfirmed uint64    `json:"unconfirmed"`
}

// Statement lists a party's receipts, per period, with totals. Amounts are
// pico-credits.
type Statement struct {
	Party   string          `json:"party"`
	Role    string          `json:"role"`
	Period  string          `json:"period"`
	Lines   []StatementLine `json:"lines"`
	Periods []PeriodTotal   `json:"periods"`
	Total   PeriodTotal     `json:"total"`
}

// receiptStatus returns how the requester answered receipt re.
func receiptStatus(s *Set, re *Entry, requester peer.ID) string {
	for _, d := range s.disputes[re.id] {
		if d.Author == requester {
			return StatusDisputed
		}
	}
	for _, a := range s.acks[re.id] {
		if a.Author == requester && a.Value().(Ack).Amount == re.Value().(Receipt).Amount {
			return StatusAcked
		}
	}
	return StatusUnconfirmed
}

// BuildStatement lists the receipts of contracts where party has role, whose
// period starts in [from, to) (zero times: unbounded), grouped into periods
// of the given length (UTC-aligned; 0 = one day).
func BuildStatement(s *Set, role Role, party peer.ID, from, to time.Time, period time.Duration) Statement {
	if period <= 0 {
		period = 24 * time.Hour
	}
	st := Statement{Party: party.String(), Role: role.String(), Period: period.String(), Lines: []StatementLine{}, Periods: []PeriodTotal{}}
	for cc, ce := range s.contracts {
		c := ce.Value().(Contract)
		if (role == RoleRequester && c.Requester != party) || (role == RoleProvider && c.Provider != party) {
			continue
		}
		if s.ContractErr(ce) != nil {
			continue // not agreed by its parties (anyone can write one): bills no one
		}
		for _, re := range s.receipts[cc] {
			if re.Author != c.Provider {
				continue // not a receipt of this contract's provider
			}
			r := re.Value().(Receipt)
			f := time.Unix(0, r.FromNanos).UTC()
			if (!from.IsZero() && f.Before(from)) || (!to.IsZero() && !f.Before(to)) {
				continue
			}
			st.Lines = append(st.Lines, StatementLine{From: f, To: time.Unix(0, r.ToNanos).UTC(), Instance: c.InstanceID, Request: c.Request,
				Contract: cc.String(), Receipt: re.id.String(), Requester: c.Requester.String(), Provider: c.Provider.String(),
				Epoch: r.Epoch, Slice: r.Slice, Usage: r.Usage, Amount: r.Amount, Status: receiptStatus(s, re, c.Requester)})
		}
	}
	sort.Slice(st.Lines, func(i, j int) bool {
		a, b := st.Lines[i], st.Lines[j]
		if !a.From.Equal(b.From) {
			return a.From.Before(b.From)
		}
		return a.Receipt < b.Receipt
	})
	add := func(t *PeriodTotal, l StatementLine) {
		t.Receipts++
		switch l.Status {
		case StatusAcked:
			t.Acked = satAdd(t.Acked, l.Amount)
		case StatusDisputed:
			t.Disputed = satAdd(t.Disputed, l.Amount)
		default:
			t.Unconfirmed = satAdd(t.Unconfirmed, l.Amount)
		}
	}
	for _, l := range st.Lines {
		ps := l.From.Truncate(period)
		if n := len(st.Periods); n == 0 || !st.Periods[n-1].From.Equal(ps) {
			st.Periods = append(st.Periods, PeriodTotal{From: ps, To: ps.Add(period)})
		}
		add(&st.Periods[len(st.Periods)-1], l)
		add(&st.Total, l)
	}
	if n := len(st.Lines); n > 0 {
		st.Total.From, st.Total.To = st.Periods[0].From, st.Periods[len(st.Periods)-1].To
	}
	return st
}

func satAdd(a, b uint64) uint64 {
	if a > math.MaxUint64-b {
		return math.MaxUint64
	}
	return a + b
}

// Balance is a peer's account: what it earned as provider and spent as
// requester on acknowledged receipts, plus grants it received. Amounts are
// pico-credits.
type Balance struct {
	Peer    string `json:"peer"`
	Earned  uint64 `json:"earned"`
	Spent   uint64 `json:"spent"`
	Granted uint64 `json:"granted"`
	// Balance = Earned − Spent + Granted (saturating at the int64 range).
	Balance int64 `json:"balance"`
	// PendingEarned and PendingSpent sum receipts not yet acknowledged
	// (and not disputed).
	PendingEarned uint64 `json:"pending_earned"`
	PendingSpent  uint64 `json:"pending_spent"`
}

// BalanceOf computes p's balance. Only grants whose author is among
// granters count (none when granters is empty): on a public grid anyone can
// sign a grant, and a grant must not mint credit the grid did not agree to.
func BalanceOf(s *Set, p peer.ID, granters []peer.ID) Balance {
	b := Balance{Peer: p.String()}
	for cc, ce := range s.contracts {
		c := ce.Value().(Contract)
		if c.Requester != p && c.Provider != p {
			continue
		}
		if s.ContractErr(ce) != nil {
			continue // not agreed by its parties (anyone can write one): moves no balance
		}
		for _, re := range s.receipts[cc] {
			if re.Author != c.Provider {
				continue
			}
			amt := re.Value().(Receipt).Amount
			switch receiptStatus(s, re, c.Requester) {
			case StatusAcked:
				if c.Provider == p {
					b.Earned = satAdd(b.Earned, amt)
				}
				if c.Requester == p {
					b.Spent = satAdd(b.Spent, amt)
				}
			case StatusUnconfirmed:
				if c.Provider == p {
					b.PendingEarned = satAdd(b.PendingEarned, amt)
				}
				if c.Requester == p {
					b.PendingSpent = satAdd(b.PendingSpent, amt)
				}
			}
		}
	}
	allowed := map[peer.ID]bool{}
	for _, g := range granters {
		allowed[g] = true
	}
	for _, e := range s.grants {
		if !allowed[e.Author] {
			continue
		}
		if g := e.Value().(Grant); g.To == p {
			b.Granted = satAdd(b.Granted, g.Amount)
		}
	}
	bal := float64(b.Earned) - float64(b.Spent) + float64(b.Granted)
	switch {
	case bal >= math.MaxInt64:
		b.Balance = math.MaxInt64
	case bal <= math.MinInt64:
		b.Balance = math.MinInt64
	default:
		// exact integer arithmetic when it fits (the usual case)
		b.Balance = int64(b.Earned) - int64(b.Spent) + int64(b.Granted)
		if b.Earned > math.MaxInt64 || b.Spent > math.MaxInt64 || b.Granted > math.MaxInt64 {
			b.Balance = int64(bal)
		}
	}
	return b
}

// Balance returns p's balance (see BalanceOf); the market compares it with
// its credit limit before bidding for p's requests.
func (l *Ledger) Balance(p peer.ID) Balance {
	l.mu.Lock()
	defer l.mu.Unlock()
	return BalanceOf(l.set, p, l.cfg.Granters)
}

// Statement builds a statement (see BuildStatement).
func (l *Ledger) Statement(role Role, party peer.ID, from, to time.Time, period time.Duration) Statement {
	l.mu.Lock()
	defer l.mu.Unlock()
	return BuildStatement(l.set, role, party, from, to, period)
}

// Balances returns the balance of every peer that appears in a contract or grant.
func (l *Ledger) Balances() []Balance {
	l.mu.Lock()
	defer l.mu.Unlock()
	seen := map[peer.ID]bool{}
	for _, ce := range l.set.contracts {
		c := ce.Value().(Contract)
		seen[c.Requester], seen[c.Provider] = true, true
	}
	for _, e := range l.set.grants {
		seen[e.Value().(Grant).To] = true
	}
	out := make([]Balance, 0, len(seen))
	for p := range seen {
		out = append(out, BalanceOf(l.set, p, l.cfg.Granters))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Peer < out[j].Peer })
	return out
}

// WriteCSV writes a statement's lines as CSV with a header row.
func WriteCSV(w io.Writer, st Statement) error {
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{"from", "to", "instance_id", "request", "contract", "receipt", "requester", "provider", "epoch", "slice",
		"cpu_us", "mem_byte_seconds", "mem_peak_bytes", "disk_byte_seconds", "net_bytes", "amount", "status"})
	u := func(v uint64) string { return strconv.FormatUint(v, 10) }
	for _, l := range st.Lines {
		_ = cw.Write([]string{l.From.Format(time.RFC3339Nano), l.To.Format(time.RFC3339Nano), l.Instance, l.Request, l.Contract, l.Receipt,
			l.Requester, l.Provider, u(l.Epoch), u(l.Slice), u(l.Usage.CPUMicros), u(l.Usage.MemByteSeconds), u(l.Usage.MemPeakBytes),
			u(l.Usage.DiskByteSeconds), u(l.Usage.NetBytes), u(l.Amount), l.Status})
	}
	cw.Flush()
	return cw.Error()
}

// WriteTable writes a statement as a human-readable table: one row per
// period, then the total. Amounts are shown in credits.
func WriteTable(w io.Writer, st Statement) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "%s %s, periods of %s\n", st.Role, st.Party, st.Period)
	fmt.Fprintln(tw, "PERIOD FROM\tTO\tRECEIPTS\tACKED\tDISPUTED\tUNCONFIRMED")
	row := func(label string, p PeriodTotal) {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\n", label, p.To.Format(time.RFC3339), p.Receipts, Credits(p.Acked), Credits(p.Disputed), Credits(p.Unconfirmed))
	}
	for _, p := range st.Periods {
		row(p.From.Format(time.RFC3339), p)
	}
	row("TOTAL", st.Total)
	return tw.Flush()
}

// CreditDecimals is the number of decimals every human-readable amount is
// shown with (CLI tables, the dashboard): credits to the micro-credit,
// the unit prices are quoted in. JSON and CSV carry exact integers
// (pico-credits for ledger amounts).
const CreditDecimals = 6

// Credits formats pico-credits as credits with CreditDecimals decimals,
// rounded half up to the micro-credit (12.500000, 0.000001 for 790 000
// pico-credits; an amount under half a micro-credit shows as 0.000000).
func Credits(pico uint64) string {
	micro := pico / PicoPerMicro
	if pico%PicoPerMicro >= PicoPerMicro/2 {
		micro++
	}
	return fmt.Sprintf("%d.%06d", micro/1_000_000, micro%1_000_000)
}

// ParseCredits parses a non-negative decimal number of credits with at
// most CreditDecimals decimals ("12", "0.5", "0.000001") into pico-credits.
func ParseCredits(s string) (uint64, error) {
	whole, frac, dot := strings.Cut(s, ".")
	bad := func() (uint64, error) {
		return 0, fmt.Errorf("%w: %q: want credits, a decimal number with at most %d decimals", ErrMalformed, s, CreditDecimals)
	}
	digits := func(d string) bool { return strings.Trim(d, "0123456789") == "" }
	if whole == "" && frac == "" || dot && frac == "" || len(frac) > CreditDecimals || !digits(whole) || !digits(frac) {
		return bad()
	}
	w, err := strconv.ParseUint("0"+whole, 10, 64)
	if err != nil {
		return bad()
	}
	f, _ := strconv.ParseUint("0"+frac+strings.Repeat("0", CreditDecimals-len(frac)), 10, 64)
	hi, lo := bits.Mul64(w, PicoPerCredit)
	sum, carry := bits.Add64(lo, f*PicoPerMicro, 0)
	if hi != 0 || carry != 0 {
		return 0, fmt.Errorf("%w: %s credits is more than the ledger can count (%s)", ErrMalformed, s, Credits(math.MaxUint64))
	}
	return sum, nil
}

// SignedCredits is Credits for a balance (negative: a debt).
func SignedCredits(pico int64) string {
	if pico < 0 {
		return "-" + Credits(uint64(-(pico+1))+1)
	}
	return Credits(uint64(pico))
}

// MicroFloor converts a balance in pico-credits to micro-credits, rounding
// toward minus infinity (a debt of any fraction of a micro-credit counts as
// a whole one): what the market, which counts in micro-credits, compares
// with a credit limit.
func MicroFloor(pico int64) int64 {
	q := pico / PicoPerMicro
	if pico%PicoPerMicro < 0 {
		q--
	}
	return q
}
