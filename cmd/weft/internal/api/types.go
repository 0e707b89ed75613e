package api

import (
	"encoding/json"
	"time"

	"github.com/weftgrid/weft/ledger"
	"github.com/weftgrid/weft/recipes"
	"github.com/weftgrid/weft/scheduler"
)

// The request and answer bodies of the local HTTP API, declared once for
// the node (which serves them) and its clients (the CLI, the dashboard).

// Request is the body of POST /v1/requests and POST /v1/jobs.
type Request struct {
	// Name of the instance (jobs: derived from the recipe and params when empty).
	Name string `json:"name,omitempty"`
	// RecipeCID names a recipe in the local store or on the grid; or
	// RecipeTOML carries the recipe itself (it is stored locally first).
	RecipeCID  string `json:"recipe_cid,omitempty"`
	RecipeTOML string `json:"recipe_toml,omitempty"`
	// Type is the software type ("" = the recipe's default).
	Type   string            `json:"type,omitempty"`
	Params map[string]string `json:"params,omitempty"`
	// SLA are key=value constraints (see scheduler.ApplySLA).
	SLA []string `json:"sla,omitempty"`
	// State is started (default), stopped or destroyed.
	State string `json:"state,omitempty"`
	// MaxRetries re-places a failed batch job (jobs only; default [market] max_retries).
	MaxRetries *int `json:"max_retries,omitempty"`
}

// Job is a batch job (POST /v1/jobs, GET /v1/jobs/{id}).
type Job struct {
	ID         string `json:"id"`
	InstanceID string `json:"instance_id"`
	Node       string `json:"node"`
	// State is pending, waiting, running, done or failed.
	State   string    `json:"state"`
	Result  string    `json:"result"`
	Reason  string    `json:"reason,omitempty"`
	Retries int       `json:"retries"`
	Recipe  string    `json:"recipe_cid"`
	Updated time.Time `json:"updated_at"`
}

// JobResult is the body of POST /v1/jobs/result: fetch the result tree
// CID (from the grid when not local) and write its files into Out (an
// absolute path on the node's machine).
type JobResult struct {
	CID string `json:"cid"`
	Out string `json:"out"`
}

// JobEntry is one element of GET /v1/jobs (weft job list): a batch job
// this node requested.
type JobEntry struct {
	// Name is the job's name as weft instance list shows it (job-… when
	// the requester gave none).
	Name string `json:"name"`
	// State is pending, waiting, running, done, failed or destroyed.
	State string `json:"state"`
	// Result is the result tree's CID, null until there is one.
	Result *string `json:"result"`
	// Node is the host's peer ID (the last one for a finished job), null
	// while unplaced.
	Node *string `json:"node"`
	// Started is when the job was asked to run; Ended when it finished
	// (this node recorded its result) — null when unknown or not yet.
	Started *time.Time `json:"started"`
	Ended   *time.Time `json:"ended"`
	Reason  string     `json:"reason,omitempty"`
	Recipe  string     `json:"recipe_cid"`
}

// Event is one entry of an instance's timeline (GET
// /v1/instances/{name}/events, weft instance events), kept by the
// requester's node from the signed statuses it receives and the auctions it
// runs.
type Event struct {
	// Time is when the node saw it happen.
	Time time.Time `json:"time"`
	// Kind is requested, auctioned, awarded, installing, started,
	// promise_failing, promise_recovered, restarted, host_lost, replaced,
	// fenced, stopped, destroyed, done, waiting or failed.
	Kind string `json:"kind"`
	// Node is the peer ID the event concerns (the host, the winner, the
	// fenced copy's node), null where no node applies.
	Node *string `json:"node"`
	// Detail says more, for people ("2 bids, 1 decline (lacked memory)",
	// "epoch 3, price 0.100000/h", "exit status 3").
	Detail string `json:"detail"`
}

// Why is the answer of GET /v1/instances/{name}/why (weft instance why):
// the last auction this node ran for the instance.
type Why struct {
	// Auction is the auction: bids (best first), declines with their
	// reasons, winner, explanation.
	Auction scheduler.AuctionView `json:"auction"`
	// Ranked are the bids in rank order, the winner marked.
	Ranked []RankedBid `json:"ranked"`
	// Ranking says how bids are ranked.
	Ranking string `json:"ranking"`
	// Summary sums it up in one line.
	Summary string `json:"summary"`
}

// RankedBid is one bid of a Why, with its rank (1 = best).
type RankedBid struct {
	Rank int `json:"rank"`
	scheduler.BidView
	Winner bool `json:"winner"`
}

// Drain is the answer of the drain routes (weft node drain, undrain): whether
// the node drains (bids on nothing, its instances being re-placed) and the
// instances it still hosts (neither fenced nor destroyed).
type Drain struct {
	Draining bool     `json:"draining"`
	Hosted   []string `json:"hosted"`
}

// Grant is the body of POST /v1/ledger/grants.
type Grant struct {
	// To is the peer ID credited.
	To string `json:"to"`
	// Amount is in pico-credits, like every money figure in JSON (the
	// grant entry's unit).
	Amount uint64 `json:"amount"`
	Memo   string `json:"memo"`
}

// LedgerHeads is the answer of GET /v1/ledger/heads (weft ledger heads):
// the ledger's Merkle root, its number of entries and each author's log
// head.
type LedgerHeads struct {
	Root    string        `json:"root"`
	Entries int           `json:"entries"`
	Heads   []ledger.Head `json:"heads"`
}

// LedgerEntry is one element of GET /v1/ledger/entries (weft ledger
// entries): a ledger entry with its decoded body.
type LedgerEntry struct {
	CID    string `json:"cid"`
	Author string `json:"author"`
	Seq    uint64 `json:"seq"`
	// Prev is the author's previous entry ("" for its first).
	Prev string `json:"prev,omitempty"`
	// Kind is contract, receipt, ack, dispute, grant, checkpoint, end, ...
	Kind string    `json:"kind"`
	Time time.Time `json:"time"`
	// Body is the decoded body, as the kind defines it.
	Body json.RawMessage `json:"body"`
}

// LocalRun is the body of POST /v1/local/instances: run an instance
// of a recipe (by CID, or inline TOML) in one of this node's partitions.
type LocalRun struct {
	// ID identifies the instance (idempotent). Default "local-" + Name, or
	// a random ID when Name is empty too.
	ID string `json:"id,omitempty"`
	// Name is a display name.
	Name string `json:"name,omitempty"`
	// RecipeCID names a published recipe (one of RecipeCID and TOML).
	RecipeCID string `json:"recipe_cid,omitempty"`
	// TOML is an inline recipe file.
	TOML string `json:"toml,omitempty"`
	// Type is the software type ("" = default).
	Type string `json:"type,omitempty"`
	// Params are parameter values as strings (validated against the schema);
	// JSON numbers and booleans are accepted too.
	Params map[string]any `json:"params,omitempty"`
	// State is started (default), stopped or destroyed.
	State string `json:"state,omitempty"`
}

// PublishRecipe is the body of POST /v1/recipes (weft recipe publish).
type PublishRecipe struct {
	// TOML is the recipe file's content.
	TOML string `json:"toml"`
	// File names the recipe in error messages (default "recipe.toml").
	File string `json:"file,omitempty"`
	// BaseDir resolves files given by source (default: sources are refused).
	BaseDir string `json:"base_dir,omitempty"`
}

// PublishedRecipe is the answer of POST /v1/recipes: the recipe with its
// CID, and whether it could be announced in the DHT.
type PublishedRecipe struct {
	recipes.Document
	// Provided is true when the provider record reached the DHT.
	Provided bool `json:"provided"`
	// ProvideError says why not, when Provided is false.
	ProvideError string `json:"provide_error,omitempty"`
}

// TunnelUpgrade is the Upgrade token of GET /v1/instances/{name}/connect
// (weft instance connect): the node answers 101 and the connection carries
// the tunnel's bytes.
const TunnelUpgrade = "weft-tunnel"
