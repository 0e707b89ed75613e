package daemon

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/weftgrid/weft/cmd/weft/internal/api"
	"github.com/weftgrid/weft/cmd/weft/internal/dashboard"
)

// dashboardSys is the dashboard subsystem: the embedded web page at GET /
// and the change stream GET /v1/events.
//
// How the page learns about changes. Two paths feed the same broker:
//
//   - notify(topic): the subsystems built after the dashboard get it as a
//     dependency and may call it from any goroutine at any time (also
//     before start), whenever their state visibly changed — e.g.
//     notify(dashboard.TopicLedger) after appending an
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
type dashboardSys struct {
	broker  *dashboard.Broker
	api     *api.Server
	onClose func(func() error)
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

// newDashboard creates the dashboard's broker; start serves it.
func newDashboard(e env) *dashboardSys {
	b, err := dashboard.NewBroker(dashboard.DefaultConfig(), e.log.With("subsystem", "dashboard"))
	if err != nil {
		panic(err) // DefaultConfig is valid
	}
	return &dashboardSys{broker: b, api: e.api, onClose: e.onClose}
}

// notify tells every open dashboard page that topic (a dashboard.Topic*
// constant) changed, so that it refetches that section. Safe from any
// goroutine; never blocks.
func (s *dashboardSys) notify(topic string) { s.broker.Notify(topic) }

// start registers GET / (public page and /assets/), GET /v1/events and GET
// /v1/dashboard (authenticated), and starts the change poll over the API
// routes with token.
func (s *dashboardSys) start(ctx context.Context, token string) {
	for _, w := range dashboardWatch {
		s.broker.Watch(w.topic, s.snapshot(token, w.path, w.ignore))
	}
	dashboard.Register(s.api, s.broker)
	s.broker.Start(ctx)
	s.onClose(s.broker.Close)
}

// snapshot returns a fetch of path through the API mux, in process.
func (s *dashboardSys) snapshot(token, path string, ignore []string) dashboard.FetchFunc {
	return func(ctx context.Context) ([]byte, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, path, nil)
		if err != nil {
			return nil, err
		}
		req.Header.Set("Authorization", "Bearer "+token)
		w := &snapshotWriter{header: http.Header{}}
		s.api.ServeHTTP(w, req)
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
