package daemon

import (
	"context"

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
//     notify(dashboard.TopicPartitions) when an instance changed phase,
//     notify(dashboard.TopicAuctions) when an auction closes. It never
//     blocks and costs a map write per open page. Topics are the
//     dashboard.Topic* constants: peers, partitions, instances, auctions,
//     ledger.
//   - a poll: while at least one page is connected, the broker reads the
//     cheap read routes of each topic (dashboard.Sources) every second with
//     the typed API client over the API mux (api.NewHandlerClient: in
//     process, no socket), hashes the JSON without its volatile fields
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
	s.broker.WatchAPI(api.NewHandlerClient(s.api, token, maxSnapshotBytes))
	dashboard.Register(s.api, s.broker)
	s.broker.Start(ctx)
	s.onClose(s.broker.Close)
}
