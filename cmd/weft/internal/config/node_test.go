package config

import "testing"

// The API listens on loopback unless the operator says otherwise.
func TestAPIRemoteNeedsAllowing(t *testing.T) {
	for _, c := range []struct {
		addr  string
		allow bool
		ok    bool
	}{
		{"127.0.0.1:7070", false, true}, {"[::1]:0", false, true}, {"localhost:7070", false, true},
		{"0.0.0.0:7070", false, false}, {":7070", false, false}, {"192.168.1.5:7070", false, false},
		{"0.0.0.0:7070", true, true}, {"192.168.1.5:7070", true, true},
	} {
		cfg := Default()
		cfg.Node.API, cfg.Node.APIAllowRemote = c.addr, c.allow
		if err := cfg.Validate(); (err == nil) != c.ok {
			t.Errorf("api %q allow_remote=%v: err %v", c.addr, c.allow, err)
		}
	}
}
