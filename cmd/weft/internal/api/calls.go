package api

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/weftgrid/weft/partition"
	"github.com/weftgrid/weft/scheduler"
)

// Answer is a decoded answer of the node with the JSON it was decoded
// from: commands print Raw as is with --json (every field the node sent,
// also those this client does not know) and use Value for people.
type Answer[T any] struct {
	Value T
	Raw   json.RawMessage
}

// call sends in (if non-nil) and decodes the answer into an Answer.
func call[T any](ctx context.Context, c *Client, method, path string, in any) (Answer[T], error) {
	var a Answer[T]
	if err := c.Do(ctx, method, path, in, &a.Raw); err != nil {
		return a, err
	}
	err := json.Unmarshal(a.Raw, &a.Value)
	return a, err
}

// Instances lists the market's instances (GET /v1/instances).
func (c *Client) Instances(ctx context.Context) (Answer[[]scheduler.InstanceView], error) {
	a, err := call[[]scheduler.InstanceView](ctx, c, http.MethodGet, "/v1/instances", nil)
	if err == nil && a.Value == nil {
		a.Value, a.Raw = []scheduler.InstanceView{}, json.RawMessage("[]")
	}
	return a, err
}

// Instance returns one instance by name (GET /v1/instances/{name}).
func (c *Client) Instance(ctx context.Context, name string) (Answer[scheduler.InstanceView], error) {
	return call[scheduler.InstanceView](ctx, c, http.MethodGet, "/v1/instances/"+url.PathEscape(name), nil)
}

// Request asks the market for an instance (POST /v1/requests).
func (c *Client) Request(ctx context.Context, r Request) (Answer[scheduler.InstanceView], error) {
	return call[scheduler.InstanceView](ctx, c, http.MethodPost, "/v1/requests", r)
}

// RunJob runs a batch job (POST /v1/jobs).
func (c *Client) RunJob(ctx context.Context, r Request) (Answer[Job], error) {
	return call[Job](ctx, c, http.MethodPost, "/v1/jobs", r)
}

// Job returns a batch job by ID (GET /v1/jobs/{id}).
func (c *Client) Job(ctx context.Context, id string) (Answer[Job], error) {
	return call[Job](ctx, c, http.MethodGet, "/v1/jobs/"+url.PathEscape(id), nil)
}

// FetchJobResult writes a job's result tree into r.Out on the node's
// machine (POST /v1/jobs/result).
func (c *Client) FetchJobResult(ctx context.Context, r JobResult) (Answer[JobResult], error) {
	return call[JobResult](ctx, c, http.MethodPost, "/v1/jobs/result", r)
}

// Jobs lists this node's batch jobs (GET /v1/jobs; all: also those
// destroyed without a result).
func (c *Client) Jobs(ctx context.Context, all bool) (Answer[[]JobEntry], error) {
	path := "/v1/jobs"
	if all {
		path += "?all=1"
	}
	a, err := call[[]JobEntry](ctx, c, http.MethodGet, path, nil)
	if err == nil && a.Value == nil {
		a.Value, a.Raw = []JobEntry{}, json.RawMessage("[]")
	}
	return a, err
}

// PurgeJobs forgets finished and destroyed jobs (DELETE /v1/jobs), or only
// the one named (DELETE /v1/jobs/{name}); the answer lists the names purged.
func (c *Client) PurgeJobs(ctx context.Context, name string) (Answer[[]string], error) {
	path := "/v1/jobs"
	if name != "" {
		path += "/" + url.PathEscape(name)
	}
	return call[[]string](ctx, c, http.MethodDelete, path, nil)
}

// PurgeInstance forgets a destroyed instance (DELETE /v1/instances/{name}).
func (c *Client) PurgeInstance(ctx context.Context, name string) (Answer[[]string], error) {
	return call[[]string](ctx, c, http.MethodDelete, "/v1/instances/"+url.PathEscape(name), nil)
}

// Events returns an instance's timeline (GET /v1/instances/{name}/events).
func (c *Client) Events(ctx context.Context, name string) (Answer[[]Event], error) {
	a, err := call[[]Event](ctx, c, http.MethodGet, "/v1/instances/"+url.PathEscape(name)+"/events", nil)
	if err == nil && a.Value == nil {
		a.Value, a.Raw = []Event{}, json.RawMessage("[]")
	}
	return a, err
}

// FollowEvents calls fn with each entry of an instance's timeline, the
// past ones first, then each new one as it happens, until ctx ends (nil
// error then) or fn returns an error.
func (c *Client) FollowEvents(ctx context.Context, name string, fn func(Event) error) error {
	resp, err := c.Raw(ctx, http.MethodGet, "/v1/instances/"+url.PathEscape(name)+"/events?follow=1", nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	dec := json.NewDecoder(resp.Body)
	for {
		var e Event
		if err := dec.Decode(&e); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		if err := fn(e); err != nil {
			return err
		}
	}
}

// Why returns the last auction this node ran for an instance (GET
// /v1/instances/{name}/why).
func (c *Client) Why(ctx context.Context, name string) (Answer[Why], error) {
	return call[Why](ctx, c, http.MethodGet, "/v1/instances/"+url.PathEscape(name)+"/why", nil)
}

// LogQuery selects an instance's logs (the query of the log routes).
type LogQuery struct {
	// Process names one process ("" = every process).
	Process string
	// Tail is how many of the last lines (0 = the whole log).
	Tail int
	// Since skips logs not written to within it (0 = no bound).
	Since time.Duration
	// Follow keeps streaming what is written next.
	Follow bool
	// JSON asks for JSON lines {"process", "data"} instead of text.
	JSON bool
}

func (q LogQuery) values() url.Values {
	v := url.Values{}
	if q.Process != "" {
		v.Set("process", q.Process)
	}
	if q.Tail > 0 {
		v.Set("tail", strconv.Itoa(q.Tail))
	}
	if q.Since > 0 {
		v.Set("since", q.Since.String())
	}
	if q.Follow {
		v.Set("follow", "1")
	}
	if q.JSON {
		v.Set("format", "json")
	}
	return v
}

// InstanceLogs copies the logs of an instance this node requested (or
// guards), read from its host, to w (GET /v1/instances/{name}/logs).
func (c *Client) InstanceLogs(ctx context.Context, name string, q LogQuery, w io.Writer) error {
	return c.Get(ctx, "/v1/instances/"+url.PathEscape(name)+"/logs?"+q.values().Encode(), w)
}

// LocalLogs copies the logs of an instance in this node's partitions to w
// (GET /v1/local/instances/{id}/logs).
func (c *Client) LocalLogs(ctx context.Context, id string, q LogQuery, w io.Writer) error {
	return c.Get(ctx, "/v1/local/instances/"+url.PathEscape(id)+"/logs?"+q.values().Encode(), w)
}

// Drain starts draining the node (POST /v1/node/drain), stops it
// (undrain: POST /v1/node/undrain) or, with neither, reports it (GET
// /v1/node/drain).
func (c *Client) Drain(ctx context.Context, method, verb string) (Answer[Drain], error) {
	return call[Drain](ctx, c, method, "/v1/node/"+verb, nil)
}

// Status returns the node's status (GET /v1/status).
func (c *Client) Status(ctx context.Context) (Answer[Status], error) {
	return call[Status](ctx, c, http.MethodGet, "/v1/status", nil)
}

// Peers lists the grid members the node knows (GET /v1/peers).
func (c *Client) Peers(ctx context.Context) (Answer[[]Peer], error) {
	a, err := call[[]Peer](ctx, c, http.MethodGet, "/v1/peers", nil)
	if err == nil && a.Value == nil {
		a.Value, a.Raw = []Peer{}, json.RawMessage("[]")
	}
	return a, err
}

// Grid returns the grid and its member list (GET /v1/grid).
func (c *Client) Grid(ctx context.Context) (Answer[Grid], error) {
	return call[Grid](ctx, c, http.MethodGet, "/v1/grid", nil)
}

// ChangeGrid admits (verb "admit") or revokes (verb "revoke") a peer on
// the founder's node (POST /v1/grid/{verb}).
func (c *Client) ChangeGrid(ctx context.Context, verb, peerID string) (Answer[Grid], error) {
	return call[Grid](ctx, c, http.MethodPost, "/v1/grid/"+url.PathEscape(verb), GridChange{PeerID: peerID})
}

// Partitions lists this node's partition slots (GET /v1/partitions).
func (c *Client) Partitions(ctx context.Context) (Answer[[]partition.PartitionStatus], error) {
	return call[[]partition.PartitionStatus](ctx, c, http.MethodGet, "/v1/partitions", nil)
}

// Hosted lists the contracts this node hosts (GET /v1/hosted).
func (c *Client) Hosted(ctx context.Context) (Answer[[]scheduler.HostedView], error) {
	return call[[]scheduler.HostedView](ctx, c, http.MethodGet, "/v1/hosted", nil)
}

// Auctions lists the auctions this node ran recently (GET /v1/auctions).
func (c *Client) Auctions(ctx context.Context) (Answer[[]scheduler.AuctionView], error) {
	return call[[]scheduler.AuctionView](ctx, c, http.MethodGet, "/v1/auctions", nil)
}

// LedgerHeads returns the ledger's root and each author's log head (GET
// /v1/ledger/heads).
func (c *Client) LedgerHeads(ctx context.Context) (Answer[LedgerHeads], error) {
	return call[LedgerHeads](ctx, c, http.MethodGet, "/v1/ledger/heads", nil)
}

// LedgerEntries lists the newest ledger entries, at most limit, of kind
// only ("" = every kind) (GET /v1/ledger/entries).
func (c *Client) LedgerEntries(ctx context.Context, kind string, limit int) (Answer[[]LedgerEntry], error) {
	q := url.Values{"limit": {strconv.Itoa(limit)}}
	if kind != "" {
		q.Set("kind", kind)
	}
	return call[[]LedgerEntry](ctx, c, http.MethodGet, "/v1/ledger/entries?"+q.Encode(), nil)
}

// RunLocal runs, updates or changes the state of an instance in one of the
// node's partitions, without the market (POST /v1/local/instances).
func (c *Client) RunLocal(ctx context.Context, r LocalRun) (Answer[partition.InstanceStatus], error) {
	return call[partition.InstanceStatus](ctx, c, http.MethodPost, "/v1/local/instances", r)
}

// LocalInstance returns an instance in the node's partitions (GET
// /v1/local/instances/{id}).
func (c *Client) LocalInstance(ctx context.Context, id string) (Answer[partition.InstanceStatus], error) {
	return call[partition.InstanceStatus](ctx, c, http.MethodGet, "/v1/local/instances/"+url.PathEscape(id), nil)
}

// PublishRecipe stores a recipe (and the files it gives by source, from
// r.BaseDir on the node's machine) on the node and announces it (POST
// /v1/recipes).
func (c *Client) PublishRecipe(ctx context.Context, r PublishRecipe) (Answer[PublishedRecipe], error) {
	return call[PublishedRecipe](ctx, c, http.MethodPost, "/v1/recipes", r)
}
