package daemon

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"

	"github.com/weftgrid/weft/cmd/weft/internal/api"
	"github.com/weftgrid/weft/cmd/weft/internal/dashboard"
)

// dashboardState is the dashboard subsystem's part of the Daemon: the
// embedded web page at GET / and the change stream GET /v1/events.
//
// How the page learns about changes. Two paths feed the same broker:
//
//   - d.notify(topic): any subsystem may call it, from any goroutine and at
//     any time (also before startDashboard), whenever its state visibly
//     changed — e.g. d.notify(dashboard.TopicLedger) after appending an
//     entry, d.notify(dashboard.TopicAuctions) when an auction closes. It
//     never blocks and costs a map write per open page. Topics are the
//     dashboard.Topic* constants: peers, partitions, instances, auctions,
//     ledger.
//   - a poll: while at least one page is connected, the broker fetches the
//     cheap read routes of each topic through the API mux every second
//     (in-process, no socket), hashes the JSON without its volatile fields
//     (uptime_s, rtt_ms, checked_at, updated_at) and notifies the topic when the hash
//     changes. So a subsystem that never calls notify still shows up live,
//     and a route that starts answering is picked up by open pages. With no
//     page open, nothing is polled.
//
// The page then refetches the affected section itself with its cookie.
type dashboardState struct {
	dashOnce sync.Once
	dash     *dashboard.Broker
}

// dashboardWatch lists what the broker polls, per topic.
var dashboardWatch = []struct {
	topic  string
	path   string
	ignore []string
}{
	{dashboard.TopicPeers, "/v1/peers", []string{"rtt_ms"}},
	{dashboard.TopicPeers, "/v1/status", []string{"uptime_s", "rtt_ms"}},
	{dashboard.TopicPartitions, "/v1/partitions", []string{"checked_at"}},
	{dashboard.TopicPartitions, "/v1/hosted", nil},
	{dashboard.TopicInstances, "/v1/instances", []string{"updated_at"}},
	{dashboard.TopicAuctions, "/v1/auctions", nil},
	// Heads change with every append; the audit itself is too costly to poll.
	{dashboard.TopicLedger, "/v1/ledger/heads", nil},
	{dashboard.TopicLedger, "/v1/ledger/entries?limit=20", nil},
}

// maxSnapshotBytes bounds what one polled route may return.
const maxSnapshotBytes = 16 << 20

// broker returns the dashboard's broker, creating it on first use so that
// notify works from any subsystem regardless of start order.
func (d *Daemon) broker() *dashboard.Broker {
	d.dashOnce.Do(func() {
		b, err := dashboard.NewBroker(dashboard.DefaultConfig(), d.log.With("subsystem", "dashboard"))
		if err != nil {
			panic(err) // DefaultConfig is valid
		}
		d.dash = b
	})
	return d.dash
}

// notify tells every open dashboard page that topic (a dashboard.Topic*
// constant) changed, so that it refetches that section. Safe from any
// goroutine; never blocks.
func (d *Daemon) notify(topic string) { d.broker().Notify(topic) }

// startDashboard registers GET / (public page and /assets/), GET /v1/events
// and GET /v1/dashboard (authenticated), and starts the change poll.
func (d *Daemon) startDashboard(ctx context.Context) error {
	token, err := api.LoadOrCreateToken(d.cfg.Node.DataDir)
	if err != nil {
		return err
	}
	b := d.broker()
	for _, w := range dashboardWatch {
		b.Watch(w.topic, d.snapshot(token, w.path, w.ignore))
	}
	dashboard.Register(d.api, b)
	b.Start(ctx)
	d.onClose(b.Close)
	return nil
}

// snapshot returns a fetch of path through the API mux, in process.
func (d *Daemon) snapshot(token, path string, ignore []string) dashboard.FetchFunc {
	return func(ctx context.Context) ([]byte, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, path, nil)
		if err != nil {
			return nil, err
		}
		req.Header.Set("Authorization", "Bearer "+token)
		w := &snapshotWriter{header: http.Header{}}
		d.api.ServeHTTP(w, req)
		if w.status/100 != 2 {
			return nil, fmt.Errorf("dashboard: GET %s: status %d", path, w.status)
		}
		if w.tooBig {
			return nil, fmt.Errorf("dashboard: GET %s: %w", path, errSnapshotTooBig)
		}
		return dashboard.Fingerprint(w.body.Bytes(), ignore...), nil
	}
}

var errSnapshotTooBig = errors.New("answer larger than the snapshot bound")

// snapshotWriter is a bounded in-memory http.ResponseWriter.
type snapshotWriter struct {
	header http.Header
	status int
	body   bytes.Buffer
	tooBig bool
}

func (w *snapshotWriter) Header() http.Header { return w.header }

func (w *snapshotWriter) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
}

func (w *snapshotWriter) Write(p []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	if w.body.Len()+len(p) > maxSnapshotBytes {
		w.tooBig = true
		return 0, errSnapshotTooBig
	}
	return w.body.Write(p)
}
