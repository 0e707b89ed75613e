package dashboard_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weftgrid/weft/cmd/weft/internal/api"
	"github.com/weftgrid/weft/cmd/weft/internal/dashboard"
)

const testToken = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

// newServer returns an API server with the dashboard registered on it.
func newServer(t *testing.T, cfg dashboard.Config) (*api.Server, *dashboard.Broker, *httptest.Server) {
	t.Helper()
	srv := api.NewServer(testToken, nil)
	b, err := dashboard.NewBroker(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	dashboard.Register(srv, b)
	hs := httptest.NewServer(srv)
	t.Cleanup(func() {
		hs.CloseClientConnections()
		hs.Close()
		b.Close()
	})
	return srv, b, hs
}

type sseEvent struct{ name, data string }

// openStream connects to /v1/events and returns a channel of its events.
func openStream(t *testing.T, ctx context.Context, base string) <-chan sseEvent {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/v1/events", nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /v1/events: %s", resp.Status)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	ch := make(chan sseEvent, 64)
	go func() {
		defer resp.Body.Close()
		defer close(ch)
		r := bufio.NewReader(resp.Body)
		var ev sseEvent
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			line = strings.TrimRight(line, "\n")
			switch {
			case line == "":
				if ev.name != "" {
					ch <- ev
				}
				ev = sseEvent{}
			case strings.HasPrefix(line, "event: "):
				ev.name = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				ev.data = strings.TrimPrefix(line, "data: ")
			}
		}
	}()
	return ch
}

// waitTopic reads events until a change of topic arrives.
func waitTopic(t *testing.T, ch <-chan sseEvent, topic string) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case ev, ok := <-ch:
			if !ok {
				t.Fatalf("stream ended before a change of %q", topic)
			}
			if ev.name != "change" {
				continue
			}
			var body struct{ Topic string }
			if err := json.Unmarshal([]byte(ev.data), &body); err != nil {
				t.Fatalf("bad change data %q: %v", ev.data, err)
			}
			if body.Topic == topic {
				return
			}
		case <-timeout:
			t.Fatalf("no change of %q within 10 s", topic)
		}
	}
}

func TestEventsHelloAndNotify(t *testing.T) {
	_, b, hs := newServer(t, dashboard.DefaultConfig())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch := openStream(t, ctx, hs.URL)
	ev := <-ch
	if ev.name != "hello" || !strings.Contains(ev.data, `"ledger"`) {
		t.Fatalf("first event = %+v, want hello listing the topics", ev)
	}
	if n := b.Subscribers(); n != 1 {
		t.Fatalf("Subscribers() = %d, want 1", n)
	}
	for range 3 {
		b.Notify(dashboard.TopicPeers)
	}
	b.Notify(dashboard.TopicLedger)
	waitTopic(t, ch, dashboard.TopicPeers)
	b.Notify(dashboard.TopicAuctions)
	waitTopic(t, ch, dashboard.TopicAuctions)
	cancel()
	deadline := time.Now().Add(10 * time.Second)
	for b.Subscribers() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("subscriber not removed after the client left")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestWatchNotifiesOnChange(t *testing.T) {
	cfg := dashboard.DefaultConfig()
	cfg.PollInterval = 10 * time.Millisecond
	_, b, hs := newServer(t, cfg)
	var value, fetches atomic.Int64
	b.Watch(dashboard.TopicPartitions, func(context.Context) ([]byte, error) {
		fetches.Add(1)
		return []byte(`{"v":` + string(rune('0'+value.Load())) + `}`), nil
	})
	b.Start(context.Background())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch := openStream(t, ctx, hs.URL)
	<-ch // hello
	// Wait until the source has been seen once, then change it.
	deadline := time.Now().Add(10 * time.Second)
	for fetches.Load() < 2 {
		if time.Now().After(deadline) {
			t.Fatal("source never polled while a stream was open")
		}
		time.Sleep(5 * time.Millisecond)
	}
	value.Store(1)
	waitTopic(t, ch, dashboard.TopicPartitions)
}

func TestRoutesAndAuth(t *testing.T) {
	_, _, hs := newServer(t, dashboard.DefaultConfig())
	get := func(path string, auth bool) (*http.Response, string) {
		req, _ := http.NewRequest(http.MethodGet, hs.URL+path, nil)
		if auth {
			req.Header.Set("Authorization", "Bearer "+testToken)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	resp, body := get("/", false)
	if resp.StatusCode != 200 || !strings.Contains(body, "<h2 id=\"grid-h\">Grid members</h2>") {
		t.Fatalf("GET / = %s, page missing", resp.Status)
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
		t.Fatalf("GET / has CSP %q", csp)
	}
	for _, p := range []string{"/assets/app.js", "/assets/app.css", "/assets/favicon.svg"} {
		if resp, _ := get(p, false); resp.StatusCode != 200 {
			t.Fatalf("GET %s = %s", p, resp.Status)
		}
	}
	if resp, _ := get("/no/such/page", true); resp.StatusCode != 404 {
		t.Fatalf("GET /no/such/page = %s, want 404 (the page must not swallow unknown routes)", resp.Status)
	}
	for _, p := range []string{"/v1/events", "/v1/dashboard"} {
		if resp, _ := get(p, false); resp.StatusCode != 401 {
			t.Fatalf("GET %s without token = %s, want 401", p, resp.Status)
		}
	}
	resp, body = get("/v1/dashboard", true)
	var s dashboard.Session
	if resp.StatusCode != 200 || json.Unmarshal([]byte(body), &s) != nil || !s.OK || len(s.Topics) != len(dashboard.Topics) {
		t.Fatalf("GET /v1/dashboard = %s %s", resp.Status, body)
	}
}

func TestMaxSubscribers(t *testing.T) {
	cfg := dashboard.DefaultConfig()
	cfg.MaxSubscribers = 1
	_, _, hs := newServer(t, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch := openStream(t, ctx, hs.URL)
	<-ch
	req, _ := http.NewRequest(http.MethodGet, hs.URL+"/v1/events", nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("second stream = %s, want 503", resp.Status)
	}
}

func TestBadConfig(t *testing.T) {
	cfg := dashboard.DefaultConfig()
	cfg.PollInterval = 0
	if _, err := dashboard.NewBroker(cfg, nil); err == nil {
		t.Fatal("NewBroker accepted a zero poll interval")
	}
}

func TestFingerprint(t *testing.T) {
	a := dashboard.Fingerprint([]byte(`{"b":1,"a":[{"rtt_ms":3,"id":"x"}],"uptime_s":5}`), "rtt_ms", "uptime_s")
	b := dashboard.Fingerprint([]byte(`{"a":[{"id":"x","rtt_ms":9}],"uptime_s":7,"b":1}`), "rtt_ms", "uptime_s")
	if string(a) != string(b) {
		t.Fatalf("fingerprints differ: %s vs %s", a, b)
	}
	if string(a) != `{"a":[{"id":"x"}],"b":1}` {
		t.Fatalf("fingerprint = %s", a)
	}
	c := dashboard.Fingerprint([]byte(`{"a":[{"id":"y"}],"b":1}`), "rtt_ms")
	if string(a) == string(c) {
		t.Fatal("a real change left the fingerprint unchanged")
	}
	if got := dashboard.Fingerprint([]byte("not json"), "x"); string(got) != "not json" {
		t.Fatalf("non-JSON body changed: %q", got)
	}
}
