package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/weftgrid/weft/ledger"
)

// ErrNotLanded marks a failure because the weft binary lacks a command, flag
// or API route the demo needs (its subsystem has not been built in): poll
// returns it at once instead of waiting for the deadline, and the step's
// result says so (StepResult.NotLanded).
var ErrNotLanded = errors.New("demo: this weft binary lacks it")

// poll calls f every interval until it reports done or ctx ends. f returns
// the reason it is not done yet; on timeout that reason is in the error.
func poll(ctx context.Context, every time.Duration, f func(ctx context.Context) (bool, error)) error {
	t := time.NewTicker(every)
	defer t.Stop()
	var why error
	for {
		done, err := f(ctx)
		if done && err == nil {
			return nil
		}
		if err != nil && (why == nil || ctx.Err() == nil) {
			// An error caused by the deadline itself says less than the
			// reason seen before it.
			why = err
		}
		if err != nil {
			if errors.Is(err, ErrNotLanded) {
				return err
			}
		}
		select {
		case <-ctx.Done():
			if why == nil {
				why = errors.New("no answer")
			}
			return fmt.Errorf("%w; last seen: %w", ctx.Err(), why)
		case <-t.C:
		}
	}
}

// memberCounts checks that every node reports want alive members; it
// returns a description of the ones that do not.
func memberCounts(names []string, members []int, want int) (bool, string) {
	var bad []string
	for i, m := range members {
		if m != want {
			bad = append(bad, fmt.Sprintf("%s sees %d", names[i], m))
		}
	}
	if len(bad) == 0 {
		return true, ""
	}
	return false, fmt.Sprintf("want %d alive members on every node: %s", want, strings.Join(bad, ", "))
}

// auditReport is the part of `weft ledger audit --json` the demo reads.
type auditReport struct {
	OK       bool              `json:"ok"`
	Entries  int               `json:"entries"`
	Receipts int               `json:"receipts"`
	Root     string            `json:"root"`
	Problems []json.RawMessage `json:"problems"`
	// Acked counts acknowledged receipts, when the ledger reports it.
	Acked *int `json:"acked,omitempty"`
}

// rootsAgree checks that every audit is ok and names the same non-empty root.
func rootsAgree(names []string, audits []auditReport) (string, error) {
	if len(audits) == 0 {
		return "", errors.New("no audits")
	}
	// Group the nodes by what is wrong, so that a problem every node sees
	// is said once.
	var order []string
	byWhy := map[string][]string{}
	add := func(why, name string) {
		if _, ok := byWhy[why]; !ok {
			order = append(order, why)
		}
		byWhy[why] = append(byWhy[why], name)
	}
	roots := map[string][]string{}
	for i, a := range audits {
		if !a.OK {
			p := ""
			if len(a.Problems) > 0 {
				var c bytes.Buffer
				if json.Compact(&c, a.Problems[0]) != nil {
					c.Reset()
					c.Write(a.Problems[0])
				}
				p = ", first: " + c.String()
			}
			add(fmt.Sprintf("audit not ok with %d problems%s", len(a.Problems), p), names[i])
		}
		if a.Root == "" {
			add("no root printed", names[i])
		}
		roots[a.Root] = append(roots[a.Root], names[i])
	}
	if len(order) > 0 {
		var parts []string
		for _, why := range order {
			parts = append(parts, strings.Join(byWhy[why], ",")+": "+why)
		}
		return "", errors.New(strings.Join(parts, "; "))
	}
	if len(roots) > 1 {
		var parts []string
		for r, ns := range roots {
			parts = append(parts, fmt.Sprintf("%s on %s", short(r), strings.Join(ns, ",")))
		}
		sort.Strings(parts)
		return "", fmt.Errorf("roots differ: %s", strings.Join(parts, "; "))
	}
	return audits[0].Root, nil
}

// instance is the part of `weft request/instance show --json` the demo reads.
type instance struct {
	Name       string         `json:"name"`
	InstanceID string         `json:"instance_id"`
	Node       string         `json:"node"`
	State      string         `json:"state"`
	Connection map[string]any `json:"connection"`
	Epoch      any            `json:"epoch,omitempty"`
	Reason     string         `json:"reason,omitempty"`
}

// url returns the instance's connection parameter url, with a scheme.
func (in instance) url() string {
	u, _ := in.Connection["url"].(string)
	if u != "" && !strings.Contains(u, "://") {
		u = "http://" + u
	}
	return u
}

// running reports whether the instance's state says it is started.
func (in instance) running() bool {
	switch strings.ToLower(in.State) {
	case "started", "running":
		return true
	}
	return false
}

// checkPlaced verifies an instance answer: a host peer ID that is one of
// the grid's nodes, a started state and a url.
func checkPlaced(in instance, isNode func(string) bool) error {
	switch {
	case in.Node == "":
		return fmt.Errorf("instance %q has no host node (state %q)", in.Name, in.State)
	case !isNode(in.Node):
		return fmt.Errorf("instance %q is hosted by %s, which is not a node of this grid", in.Name, in.Node)
	case !in.running():
		return fmt.Errorf("instance %q is in state %q (%s), want started", in.Name, in.State, in.Reason)
	case in.url() == "":
		return fmt.Errorf("instance %q has no connection parameter url (connection: %v)", in.Name, in.Connection)
	}
	return nil
}

// jobAnswer is the part of `weft job run --json` the demo reads.
type jobAnswer struct {
	State  string `json:"state"`
	Result string `json:"result"`
	Node   string `json:"node,omitempty"`
	ID     string `json:"id,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// failedState reports whether a job or instance state names a failure.
func failedState(s string) bool {
	s = strings.ToLower(s)
	return strings.Contains(s, "fail") || strings.Contains(s, "error") || strings.Contains(s, "abort") || strings.Contains(s, "cancel")
}

// findNumber looks for want as a whole number in the files under dir and
// returns the first file (relative) and line holding it.
func findNumber(dir string, want int) (file, line string, err error) {
	re := regexp.MustCompile(`(^|[^0-9])` + fmt.Sprint(want) + `([^0-9]|$)`)
	var files []string
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		return "", "", err
	}
	if len(files) == 0 {
		return "", "", fmt.Errorf("the result holds no files")
	}
	for _, p := range files {
		f, err := os.Open(p)
		if err != nil {
			return "", "", err
		}
		b, err := io.ReadAll(io.LimitReader(f, 1<<20))
		f.Close()
		if err != nil {
			return "", "", err
		}
		for _, l := range strings.Split(string(b), "\n") {
			if re.MatchString(l) {
				rel, _ := filepath.Rel(dir, p)
				return rel, strings.TrimSpace(l), nil
			}
		}
	}
	return "", "", fmt.Errorf("no file of the result (%d files) holds the number %d", len(files), want)
}

// auction is the part of GET /v1/auctions the demo reads.
type auction struct {
	Request     json.RawMessage `json:"request"`
	InstanceID  string          `json:"instance_id"`
	Bids        []bid           `json:"bids"`
	Declines    []decline       `json:"declines"`
	Winner      string          `json:"winner"`
	Explanation string          `json:"explanation"`
	Reason      string          `json:"reason,omitempty"`
	Epoch       any             `json:"epoch,omitempty"`
}

type bid struct {
	Node string `json:"node"`
	// Price is the bid's hourly total, in pico-credits (JSON's money unit).
	Price json.Number `json:"price"`
	RTTMs any         `json:"rtt_ms"`
}

// credits shows a JSON money figure (pico-credits) in credits with six
// decimals, like every human-readable amount.
func credits(pico json.Number) string {
	v, err := strconv.ParseUint(string(pico), 10, 64)
	if err != nil {
		return string(pico) + " pico-credits"
	}
	return ledger.Credits(v)
}

type decline struct {
	Node   string `json:"node"`
	Reason string `json:"reason"`
}

// findAuction returns the latest auction for the instance (by instance ID,
// or by request name when the auction does not carry the ID).
func findAuction(all []auction, instanceID, name string) (auction, bool) {
	for i := len(all) - 1; i >= 0; i-- {
		a := all[i]
		if instanceID != "" && a.InstanceID == instanceID {
			return a, true
		}
	}
	for i := len(all) - 1; i >= 0; i-- {
		a := all[i]
		var s string
		if json.Unmarshal(a.Request, &s) == nil && s == name {
			return a, true
		}
		var o struct {
			Name string `json:"name"`
		}
		if json.Unmarshal(a.Request, &o) == nil && o.Name == name {
			return a, true
		}
	}
	return auction{}, false
}

// checkAuction verifies that the auction's winner is the host and one of
// the bidders.
func checkAuction(a auction, host string) error {
	if len(a.Bids) == 0 {
		return fmt.Errorf("the auction recorded no bids (declines: %d, explanation: %q)", len(a.Declines), a.Explanation)
	}
	if a.Winner != host {
		return fmt.Errorf("the auction's winner %s is not the instance's host %s", a.Winner, host)
	}
	for _, b := range a.Bids {
		if b.Node == host {
			return nil
		}
	}
	return fmt.Errorf("the winner %s is not among the %d bidders", host, len(a.Bids))
}

// checkStatement verifies a statement for a requester that has been billed:
// non-empty JSON, and when it carries a total receipt count or lines (the
// ledger's statement format), at least one receipt and one line.
func checkStatement(raw []byte) error {
	if !nonEmptyJSON(raw) {
		return fmt.Errorf("the statement is empty: %.200s", raw)
	}
	var st struct {
		Lines []json.RawMessage `json:"lines"`
		Total *struct {
			Receipts *int `json:"receipts"`
		} `json:"total"`
	}
	if json.Unmarshal(raw, &st) != nil {
		return nil // another shape: non-empty is all we can check
	}
	if st.Total != nil && st.Total.Receipts != nil && *st.Total.Receipts <= 0 {
		return fmt.Errorf("the statement counts %d receipts for a requester whose instance has been billed", *st.Total.Receipts)
	}
	if st.Lines != nil && len(st.Lines) == 0 {
		return errors.New("the statement has no lines for a requester whose instance has been billed")
	}
	return nil
}

// nonEmptyJSON reports whether raw is a JSON value with content (not null,
// not an empty object, array or string).
func nonEmptyJSON(raw []byte) bool {
	var v any
	if json.Unmarshal(raw, &v) != nil {
		return false
	}
	switch x := v.(type) {
	case nil:
		return false
	case map[string]any:
		return len(x) > 0
	case []any:
		return len(x) > 0
	case string:
		return x != ""
	}
	return true
}
