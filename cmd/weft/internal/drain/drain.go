// Package drain takes a host out of the market and back (weft node drain,
// weft node undrain): a draining node stops bidding, advertises no_bids so
// that auctioneers leave it out, and its hosted instances' statuses say
// "draining", which makes their requesters (or, when a requester is
// offline, its guardians) re-place them elsewhere as for a lost host; the
// new contracts fence the drained copies.
//
// Routes: POST /v1/node/drain, POST /v1/node/undrain and GET /v1/node/drain,
// each answering an api.Drain.
//
// Concurrency: the handlers are safe for concurrent use.
package drain

import (
	"context"
	"net/http"

	"github.com/weftgrid/weft/cmd/weft/internal/api"
	"github.com/weftgrid/weft/p2p"
	"github.com/weftgrid/weft/scheduler"
)

// Market is what a drain needs of the market engine (*scheduler.Market).
type Market interface {
	SetBidding(ctx context.Context, on bool) error
	Bidding(ctx context.Context) (bool, error)
	Hosted() []scheduler.HostedView
}

// Advertiser is the node's membership advert (*p2p.Node).
type Advertiser interface {
	Advert() p2p.Advert
	SetAdvert(p2p.Advert) error
}

// Routes registers the drain routes on srv. requesterOnly: the node never
// bids (--partitions 0), so undrain leaves it out of the market.
func Routes(srv *api.Server, m Market, n Advertiser, requesterOnly bool) {
	set := func(on bool) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if err := m.SetBidding(r.Context(), on); err != nil {
				api.WriteError(w, http.StatusInternalServerError, err)
				return
			}
			a := n.Advert()
			a.NoBids = !on || requesterOnly
			if err := n.SetAdvert(a); err != nil {
				api.WriteError(w, http.StatusInternalServerError, err)
				return
			}
			answer(w, r, m)
		}
	}
	srv.HandleFunc("POST /v1/node/drain", set(false))
	srv.HandleFunc("POST /v1/node/undrain", set(true))
	srv.HandleFunc("GET /v1/node/drain", func(w http.ResponseWriter, r *http.Request) { answer(w, r, m) })
}

func answer(w http.ResponseWriter, r *http.Request, m Market) {
	on, err := m.Bidding(r.Context())
	if err != nil {
		api.WriteError(w, http.StatusInternalServerError, err)
		return
	}
	d := api.Drain{Draining: !on, Hosted: []string{}}
	for _, h := range m.Hosted() {
		if !h.Fenced && h.State != scheduler.StateDestroyed {
			d.Hosted = append(d.Hosted, h.Name)
		}
	}
	api.WriteJSON(w, http.StatusOK, d)
}
