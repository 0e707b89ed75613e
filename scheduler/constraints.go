package scheduler

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// Constraints are what a requester demands of the host (SlapOS's SLA keys
// and more). They are part of the signed request.
type Constraints struct {
	// Node pins the instance to one node.
	Node peer.ID `cbor:"1,keyasint,omitempty" json:"node,omitempty"`
	// Labels must all be advertised by the host with these values.
	Labels map[string]string `cbor:"2,keyasint,omitempty" json:"labels,omitempty"`
	// CoLocate names another instance of the same requester; the host must
	// be the node that hosts it.
	CoLocate string `cbor:"3,keyasint,omitempty" json:"colocate,omitempty"`
	// AntiAffinity names a set: at most one instance of the set per node, or
	// per value of the label AntiAffinityScope.
	AntiAffinity string `cbor:"4,keyasint,omitempty" json:"anti_affinity,omitempty"`
	// AntiAffinityScope is "" (per node) or a label key (per label value).
	AntiAffinityScope string `cbor:"5,keyasint,omitempty" json:"anti_affinity_scope,omitempty"`
	// MaxPrice bounds the hourly cost of the instance's resources (0: none).
	MaxPrice Amount `cbor:"6,keyasint,omitempty" json:"max_price,omitempty"`
	// MaxRTT bounds the round-trip time between host and requester in
	// nanoseconds (0: none), for edge placement.
	MaxRTT time.Duration `cbor:"7,keyasint,omitempty" json:"max_rtt,omitempty"`
}

// WellKnownLabels are label keys usable directly as SLA keys
// (`--sla region=eu`); any other label is written `label.KEY=VALUE`.
var WellKnownLabels = []string{"region", "zone", "site", "country", "arch", "os", "network", "datacenter", "rack"}

// SLAKeys are the SLA keys other than labels.
var SLAKeys = []string{
	"node", "computer_guid", "colocate", "anti_affinity", "anti_affinity_scope",
	"max_price", "max_rtt", "wait_for_capacity", "grace", "guardians",
}

// Limits on constraints.
const (
	maxLabels      = 32
	maxLabelLen    = 128
	maxExcludeList = 256
)

// ApplySLA parses `key=value` strings (the `--sla` flags) into spec. An
// unknown key is an error wrapping ErrUnknownConstraint that names it.
//
// Keys: node (alias computer_guid): a peer ID; region, zone, site, country,
// arch, os, network, datacenter, rack and label.KEY: node labels;
// colocate: an instance name; anti_affinity: a set name;
// anti_affinity_scope: "node" or a label key; max_price: credits per hour
// (decimal); max_rtt: a duration ("20ms"); wait_for_capacity: a boolean;
// grace: a duration before a silent host counts as lost; guardians: how many
// guardians may re-place the instance while the requester is offline.
func ApplySLA(spec *RequestSpec, kvs []string) error {
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		k = strings.TrimSpace(k)
		v = strings.TrimSpace(v)
		if !ok || k == "" {
			return fmt.Errorf("%w: %q is not key=value", ErrBadConstraint, kv)
		}
		c := &spec.Constraints
		switch {
		case k == "node" || k == "computer_guid":
			id, err := peer.Decode(v)
			if err != nil {
				return fmt.Errorf("%w: %s=%q: not a peer ID: %v", ErrBadConstraint, k, v, err)
			}
			c.Node = id
		case strings.HasPrefix(k, "label.") || slices.Contains(WellKnownLabels, k):
			key := strings.TrimPrefix(k, "label.")
			if key == "" || v == "" || len(key) > maxLabelLen || len(v) > maxLabelLen {
				return fmt.Errorf("%w: label %q=%q: key and value must be 1..%d characters", ErrBadConstraint, key, v, maxLabelLen)
			}
			if c.Labels == nil {
				c.Labels = map[string]string{}
			}
			c.Labels[key] = v
		case k == "colocate":
			if err := ValidateName(v); err != nil {
				return fmt.Errorf("%w: colocate: %v", ErrBadConstraint, err)
			}
			c.CoLocate = v
		case k == "anti_affinity":
			if err := ValidateName(v); err != nil {
				return fmt.Errorf("%w: anti_affinity: %v", ErrBadConstraint, err)
			}
			c.AntiAffinity = v
		case k == "anti_affinity_scope":
			// A label key, written as in the label keys ("zone" or
			// "label.building"): node labels carry it without "label.".
			if v == "node" {
				v = ""
			} else if key, ok := strings.CutPrefix(v, "label."); ok {
				if key == "" {
					return fmt.Errorf("%w: anti_affinity_scope=%q: want node or a label key", ErrBadConstraint, v)
				}
				v = key
			}
			if len(v) > maxLabelLen {
				return fmt.Errorf("%w: anti_affinity_scope=%q: a label key is 1..%d characters", ErrBadConstraint, v, maxLabelLen)
			}
			c.AntiAffinityScope = v
		case k == "max_price":
			a, err := ParseAmount(v)
			if err != nil || a <= 0 {
				return fmt.Errorf("%w: max_price=%q: want a positive number of credits per hour", ErrBadConstraint, v)
			}
			c.MaxPrice = a
		case k == "max_rtt":
			d, err := time.ParseDuration(v)
			if err != nil || d <= 0 {
				return fmt.Errorf("%w: max_rtt=%q: want a positive duration such as 20ms", ErrBadConstraint, v)
			}
			c.MaxRTT = d
		case k == "wait_for_capacity":
			b, err := strconv.ParseBool(v)
			if err != nil {
				return fmt.Errorf("%w: wait_for_capacity=%q: want true or false", ErrBadConstraint, v)
			}
			spec.WaitForCapacity = b
		case k == "grace":
			d, err := time.ParseDuration(v)
			if err != nil || d < 0 {
				return fmt.Errorf("%w: grace=%q: want a duration such as 5s", ErrBadConstraint, v)
			}
			spec.Grace = d
		case k == "guardians":
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 || n > 16 {
				return fmt.Errorf("%w: guardians=%q: want 0..16", ErrBadConstraint, v)
			}
			if n == 0 {
				n = -1 // explicitly none
			}
			spec.Guardians = n
		default:
			return fmt.Errorf("%w %q (known: %s, %s; write label.%s=VALUE for a custom node label)",
				ErrUnknownConstraint, k, strings.Join(SLAKeys, ", "), strings.Join(WellKnownLabels, ", "), k)
		}
	}
	return nil
}

// ParseAmount parses a decimal number of credits ("0.25") into an Amount.
func ParseAmount(s string) (Amount, error) {
	whole, frac, _ := strings.Cut(s, ".")
	// Digits only: ParseInt would take a sign, and "-0.5" came out as 0.5.
	if len(frac) > 6 || whole == "" && frac == "" || strings.ContainsAny(s, "+-") {
		return 0, fmt.Errorf("%w: amount %q", ErrBadConstraint, s)
	}
	w, err := strconv.ParseInt(whole, 10, 40)
	if whole == "" {
		w, err = 0, nil
	}
	if err != nil || w < 0 {
		return 0, fmt.Errorf("%w: amount %q", ErrBadConstraint, s)
	}
	var f int64
	if frac != "" {
		f, err = strconv.ParseInt(frac+strings.Repeat("0", 6-len(frac)), 10, 64)
		if err != nil || f < 0 {
			return 0, fmt.Errorf("%w: amount %q", ErrBadConstraint, s)
		}
	}
	return Amount(w*1e6 + f), nil
}

func (c *Constraints) validate() error {
	if len(c.Labels) > maxLabels {
		return fmt.Errorf("%w: more than %d labels", ErrTooLarge, maxLabels)
	}
	for k, v := range c.Labels {
		if k == "" || v == "" || len(k) > maxLabelLen || len(v) > maxLabelLen {
			return fmt.Errorf("%w: label %q=%q", ErrMalformed, k, v)
		}
	}
	if c.Node != "" {
		if err := c.Node.Validate(); err != nil {
			return fmt.Errorf("%w: node: %v", ErrMalformed, err)
		}
	}
	if c.MaxPrice < 0 || c.MaxRTT < 0 || len(c.CoLocate) > MaxNameLen || len(c.AntiAffinity) > MaxNameLen || len(c.AntiAffinityScope) > maxLabelLen {
		return fmt.Errorf("%w: constraint out of range", ErrMalformed)
	}
	return nil
}

// Filter is what bidders check: the request's constraints with co-location
// and anti-affinity resolved by the auctioneer into node and label sets.
type Filter struct {
	// Node, if set, is the only node that may bid.
	Node peer.ID `cbor:"1,keyasint,omitempty" json:"node,omitempty"`
	// NodeWhy says why Node is pinned ("node" or "colocate=NAME").
	NodeWhy string `cbor:"2,keyasint,omitempty" json:"node_why,omitempty"`
	// Labels must all match the bidder's labels.
	Labels map[string]string `cbor:"3,keyasint,omitempty" json:"labels,omitempty"`
	// ExcludeNodes may not bid (anti-affinity per node, previous dead hosts).
	ExcludeNodes []peer.ID `cbor:"4,keyasint,omitempty" json:"exclude_nodes,omitempty"`
	// ExcludeLabel and ExcludeValues: a node whose label ExcludeLabel has one
	// of ExcludeValues may not bid (anti-affinity per label value).
	ExcludeLabel  string   `cbor:"5,keyasint,omitempty" json:"exclude_label,omitempty"`
	ExcludeValues []string `cbor:"6,keyasint,omitempty" json:"exclude_values,omitempty"`
	// ExcludeWhy names the rule behind the exclusions ("anti_affinity=SET").
	ExcludeWhy string `cbor:"7,keyasint,omitempty" json:"exclude_why,omitempty"`
	// MaxPrice bounds the bid's hourly total (0: none).
	MaxPrice Amount `cbor:"8,keyasint,omitempty" json:"max_price,omitempty"`
	// MaxRTT bounds the bidder's RTT to the requester (0: none).
	MaxRTT time.Duration `cbor:"9,keyasint,omitempty" json:"max_rtt,omitempty"`
}

func (f *Filter) validate() error {
	if len(f.Labels) > maxLabels || len(f.ExcludeNodes) > maxExcludeList || len(f.ExcludeValues) > maxExcludeList {
		return fmt.Errorf("%w: filter lists", ErrTooLarge)
	}
	if f.MaxPrice < 0 || f.MaxRTT < 0 {
		return fmt.Errorf("%w: filter bounds", ErrMalformed)
	}
	return nil
}

// CheckNode reports whether a node with these labels passes the filter's
// node and label rules; if not, it returns a decline code and text.
func (f *Filter) CheckNode(self peer.ID, labels map[string]string) (DeclineCode, string) {
	if f.Node != "" && f.Node != self {
		why := f.NodeWhy
		if why == "" {
			why = "node"
		}
		return DeclineNotPinned, "not the pinned node (" + why + ")"
	}
	if slices.Contains(f.ExcludeNodes, self) {
		why := f.ExcludeWhy
		if why == "" {
			why = "exclusion"
		}
		return DeclineExcluded, "excluded by " + why
	}
	for _, k := range slices.Sorted(maps.Keys(f.Labels)) {
		if labels[k] != f.Labels[k] {
			return DeclineLabel, "excluded by " + k + "=" + f.Labels[k]
		}
	}
	if f.ExcludeLabel != "" {
		if v, ok := labels[f.ExcludeLabel]; ok && slices.Contains(f.ExcludeValues, v) {
			return DeclineExcluded, "excluded by " + f.ExcludeWhy + " (" + f.ExcludeLabel + "=" + v + ")"
		}
	}
	return DeclineNone, ""
}
