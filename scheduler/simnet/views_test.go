package simnet_test

import (
	"encoding/json"
	"testing"
	"testing/synctest"
)

// The JSON of an instance carries the fields the CLI contract names, with
// the state as a word and connection as an object.
func TestInstanceViewJSONContract(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, nodes := grid(t, 3, nil)
		v := placed(t, nodes[0].Market, spec("web"))
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		if m["name"] != "web" || m["instance_id"] != string(v.InstanceID) || m["node"] != v.Node || m["state"] != "started" {
			t.Fatalf("json %s", b)
		}
		if c, ok := m["connection"].(map[string]any); !ok || c["url"] == nil {
			t.Fatalf("connection not an object with url: %s", b)
		}
		if m["epoch"] != float64(1) {
			t.Fatalf("epoch: %s", b)
		}
		a, err := json.Marshal(nodes[0].Market.Auctions())
		if err != nil {
			t.Fatal(err)
		}
		var as []map[string]any
		if err := json.Unmarshal(a, &as); err != nil || len(as) != 1 {
			t.Fatalf("auctions json %s", a)
		}
		for _, k := range []string{"request", "instance_id", "opened_at", "closed_at", "bids", "declines", "winner"} {
			if _, ok := as[0][k]; !ok {
				t.Fatalf("auction JSON lacks %q: %s", k, a)
			}
		}
		bid := as[0]["bids"].([]any)[0].(map[string]any)
		for _, k := range []string{"node", "price", "rtt_ms"} {
			if _, ok := bid[k]; !ok {
				t.Fatalf("bid JSON lacks %q: %s", k, a)
			}
		}
	})
}
