package p2p

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	members   *prometheus.GaugeVec
	events    *prometheus.CounterVec
	rejected  *prometheus.CounterVec
	gated     prometheus.Counter
	penalised prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		members: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "weft_p2p_members", Help: "Grid members by state, self included.",
		}, []string{"state"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "weft_p2p_member_events_total", Help: "Membership events by type.",
		}, []string{"type"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "weft_p2p_pubsub_rejected_total", Help: "Pubsub messages rejected by topic validators, by reason.",
		}, []string{"reason"}),
		gated: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "weft_p2p_gated_connections_total", Help: "Connections refused by the connection gater.",
		}),
		penalised: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "weft_p2p_penalised_peers_total", Help: "Peers disconnected and banned for repeated invalid messages.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.members, m.events, m.rejected, m.gated, m.penalised)
	}
	return m
}
