package timeline

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/weftgrid/weft/cmd/weft/internal/api"
	"github.com/weftgrid/weft/scheduler"
)

// Market is what the routes need of the market engine (*scheduler.Market).
type Market interface {
	Instance(name string) (scheduler.InstanceView, error)
	Auctions() []scheduler.AuctionView
}

// Start opens the timelines kept in dir (Open), registers their routes on
// srv (Routes) and sets *purged (if not nil) to forget the timeline of an
// instance of m's purged by name.
func Start(dir string, log *slog.Logger, srv *api.Server, m interface {
	Market
	ID() peer.ID
}, purged *func(name string)) (*Timeline, error) {
	t, err := Open(dir, 0, log)
	if err != nil {
		return nil, err
	}
	t.Routes(srv, m)
	if purged != nil {
		*purged = func(name string) { t.Forget(scheduler.NewInstanceID(m.ID(), name)) }
	}
	return t, nil
}

// Routes registers GET /v1/instances/{name}/events (?follow=1: the
// timeline so far, then each new entry, as JSON lines until the client
// goes) and GET /v1/instances/{name}/why (the instance's last auction).
func (t *Timeline) Routes(srv *api.Server, m Market) {
	srv.HandleFunc("GET /v1/instances/{name}/events", func(w http.ResponseWriter, r *http.Request) {
		v, ok := lookup(w, m, r.PathValue("name"))
		if !ok {
			return
		}
		if r.URL.Query().Get("follow") == "" {
			api.WriteJSON(w, http.StatusOK, t.Events(v.InstanceID))
			return
		}
		past, next, cancel := t.Follow(v.InstanceID)
		defer cancel()
		w.Header().Set("Content-Type", "application/x-ndjson")
		w.WriteHeader(http.StatusOK)
		enc := json.NewEncoder(w)
		fl, _ := w.(http.Flusher)
		for _, e := range past {
			if enc.Encode(e) != nil {
				return
			}
		}
		for {
			if fl != nil {
				fl.Flush()
			}
			select {
			case e := <-next:
				if enc.Encode(e) != nil {
					return
				}
			case <-r.Context().Done():
				return
			}
		}
	})
	srv.HandleFunc("GET /v1/instances/{name}/why", func(w http.ResponseWriter, r *http.Request) {
		v, ok := lookup(w, m, r.PathValue("name"))
		if !ok {
			return
		}
		a, found := LastAuction(m.Auctions(), v.InstanceID)
		if !found {
			api.WriteError(w, http.StatusNotFound, fmt.Errorf("timeline: this node ran no auction of %s that it still remembers (a guardian may have placed it, or the node restarted since)", v.Name))
			return
		}
		api.WriteJSON(w, http.StatusOK, Why(a))
	})
}

func lookup(w http.ResponseWriter, m Market, name string) (scheduler.InstanceView, bool) {
	v, err := m.Instance(name)
	switch {
	case errors.Is(err, scheduler.ErrNotFound):
		api.WriteError(w, http.StatusNotFound, fmt.Errorf("%w: %s (list them with weft instance list --all)", err, name))
		return v, false
	case err != nil:
		api.WriteError(w, http.StatusInternalServerError, err)
		return v, false
	}
	return v, true
}

// LastAuction returns the most recently opened auction of instance id.
func LastAuction(all []scheduler.AuctionView, id scheduler.InstanceID) (scheduler.AuctionView, bool) {
	var last scheduler.AuctionView
	found := false
	for _, a := range all {
		if a.InstanceID == id && (!found || !a.OpenedAt.Before(last.OpenedAt)) {
			last, found = a, true
		}
	}
	return last, found
}

// Why is the answer of GET /v1/instances/{name}/why: an auction with its
// bids ranked (best first, as the auction ranks them) and a summary.
func Why(a scheduler.AuctionView) api.Why {
	w := api.Why{Auction: a, Ranking: "cheapest total price first, then the better fit, then the lower RTT to the requester",
		Summary: AuctionSummary(a)}
	for i, b := range a.Bids {
		w.Ranked = append(w.Ranked, api.RankedBid{Rank: i + 1, BidView: b, Winner: b.Node == a.Winner})
	}
	if w.Ranked == nil {
		w.Ranked = []api.RankedBid{}
	}
	return w
}
