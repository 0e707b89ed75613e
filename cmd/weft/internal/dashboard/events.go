package dashboard

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sort"
	"sync"
	"time"
)

// Topics the page knows. Each names a section of the page; a change event
// for a topic makes the page refetch that section's routes.
const (
	// TopicPeers covers GET /v1/status and GET /v1/peers.
	TopicPeers = "peers"
	// TopicPartitions covers GET /v1/partitions.
	TopicPartitions = "partitions"
	// TopicInstances covers GET /v1/instances.
	TopicInstances = "instances"
	// TopicAuctions covers GET /v1/auctions.
	TopicAuctions = "auctions"
	// TopicLedger covers GET /v1/ledger/audit, /v1/ledger/entries and statements.
	TopicLedger = "ledger"
)

// Topics lists every topic, in page order.
var Topics = []string{TopicPeers, TopicPartitions, TopicInstances, TopicAuctions, TopicLedger}

// ErrTooManySubscribers is returned (as 503) when MaxSubscribers event
// streams are already open.
var ErrTooManySubscribers = errors.New("dashboard: too many event subscribers")

// Config tunes a Broker.
type Config struct {
	// PollInterval is how often watched sources are fetched while at least
	// one event stream is open. Default 1 s.
	PollInterval time.Duration
	// KeepAlive is the interval of SSE comment lines that keep idle streams
	// (and proxies) open. Default 15 s.
	KeepAlive time.Duration
	// Retry is the reconnection delay the stream suggests to browsers.
	// Default 2 s.
	Retry time.Duration
	// MaxSubscribers bounds concurrent event streams. Default 64.
	MaxSubscribers int
}

// DefaultConfig returns the defaults documented on Config.
func DefaultConfig() Config {
	return Config{PollInterval: time.Second, KeepAlive: 15 * time.Second, Retry: 2 * time.Second, MaxSubscribers: 64}
}

func (c Config) validate() error {
	if c.PollInterval <= 0 || c.KeepAlive <= 0 || c.Retry <= 0 || c.MaxSubscribers <= 0 {
		return fmt.Errorf("dashboard: config: every duration and MaxSubscribers must be positive: %+v", c)
	}
	return nil
}

// FetchFunc returns the current state of a watched source. Only whether its
// result changed matters; an error counts as a state too (a route that
// starts answering is a change).
type FetchFunc func(ctx context.Context) ([]byte, error)

type source struct {
	topic string
	fetch FetchFunc
	last  [sha256.Size]byte
	seen  bool
}

type subscriber struct {
	mu      sync.Mutex
	pending map[string]bool
	wake    chan struct{}
}

// Broker fans change notifications out to server-sent event streams and
// polls watched sources to notice changes nobody reported.
type Broker struct {
	cfg Config
	log *slog.Logger

	mu      sync.Mutex
	subs    map[*subscriber]struct{}
	sources []*source
	started bool

	cancel context.CancelFunc
	wg     sync.WaitGroup
	close  sync.Once
}

// NewBroker returns a broker; Notify and ServeHTTP work before Start, which
// only starts polling the watched sources.
func NewBroker(cfg Config, log *slog.Logger) (*Broker, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	return &Broker{cfg: cfg, log: log, subs: map[*subscriber]struct{}{}}, nil
}

// Watch adds a source polled every PollInterval while somebody listens; a
// change of its result notifies topic. Call it before Start.
func (b *Broker) Watch(topic string, fetch FetchFunc) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.sources = append(b.sources, &source{topic: topic, fetch: fetch})
}

// Notify tells every open stream that topic changed. It never blocks;
// notifications of the same topic coalesce until the stream writes them.
func (b *Broker) Notify(topic string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for s := range b.subs {
		s.mu.Lock()
		s.pending[topic] = true
		s.mu.Unlock()
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
}

// Subscribers returns the number of open event streams.
func (b *Broker) Subscribers() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.subs)
}

// Start polls the watched sources until ctx ends or Close.
func (b *Broker) Start(ctx context.Context) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.started {
		return
	}
	b.started = true
	ctx, b.cancel = context.WithCancel(ctx)
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		b.pollLoop(ctx)
	}()
}

// Close stops polling and waits for it. Open streams end when their
// requests do (the API server's Close ends them). Idempotent.
func (b *Broker) Close() error {
	b.close.Do(func() {
		b.mu.Lock()
		cancel := b.cancel
		b.mu.Unlock()
		if cancel != nil {
			cancel()
		}
		b.wg.Wait()
	})
	return nil
}

func (b *Broker) pollLoop(ctx context.Context) {
	t := time.NewTicker(b.cfg.PollInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		b.poll(ctx)
	}
}

// poll fetches every source once. Nobody listening: forget what was seen;
// the first poll once somebody listens again notifies every topic.
func (b *Broker) poll(ctx context.Context) {
	b.mu.Lock()
	listening := len(b.subs) > 0
	srcs := slices.Clone(b.sources)
	b.mu.Unlock()
	for _, s := range srcs {
		if !listening {
			s.seen = false
			continue
		}
		fctx, cancel := context.WithTimeout(ctx, 5*b.cfg.PollInterval)
		body, err := s.fetch(fctx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		var sum [sha256.Size]byte
		if err != nil {
			sum = sha256.Sum256([]byte("error: " + err.Error()))
		} else {
			sum = sha256.Sum256(body)
		}
		// The first poll after somebody started listening notifies too: the
		// page's initial load and this baseline are not simultaneous, and a
		// change between them must not be lost.
		if !s.seen || sum != s.last {
			b.Notify(s.topic)
		}
		s.last, s.seen = sum, true
	}
}

// ServeHTTP streams change events as text/event-stream:
//
//	event: hello   data: {"topics":[...]}      once, on connect
//	event: change  data: {"topic":"peers"}     whenever a topic changes
//
// plus comment lines every KeepAlive. Register it behind authentication.
func (b *Broker) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	sub := &subscriber{pending: map[string]bool{}, wake: make(chan struct{}, 1)}
	b.mu.Lock()
	if len(b.subs) >= b.cfg.MaxSubscribers {
		b.mu.Unlock()
		http.Error(w, ErrTooManySubscribers.Error(), http.StatusServiceUnavailable)
		return
	}
	b.subs[sub] = struct{}{}
	b.mu.Unlock()
	defer func() {
		b.mu.Lock()
		delete(b.subs, sub)
		b.mu.Unlock()
	}()
	// A stream lives long: lift the server's write deadline if it has one.
	_ = rc.SetWriteDeadline(time.Time{})

	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	hello, _ := json.Marshal(map[string]any{"topics": Topics})
	if _, err := fmt.Fprintf(w, "retry: %d\nevent: hello\ndata: %s\n\n", b.cfg.Retry.Milliseconds(), hello); err != nil {
		return
	}
	if rc.Flush() != nil {
		return
	}
	ka := time.NewTicker(b.cfg.KeepAlive)
	defer ka.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-ka.C:
			if _, err := fmt.Fprint(w, ": keep-alive\n\n"); err != nil {
				return
			}
		case <-sub.wake:
			sub.mu.Lock()
			topics := make([]string, 0, len(sub.pending))
			for t := range sub.pending {
				topics = append(topics, t)
			}
			clear(sub.pending)
			sub.mu.Unlock()
			sort.Strings(topics)
			for _, t := range topics {
				data, _ := json.Marshal(map[string]string{"topic": t})
				if _, err := fmt.Fprintf(w, "event: change\ndata: %s\n\n", data); err != nil {
					return
				}
			}
		}
		if rc.Flush() != nil {
			return
		}
	}
}

// Fingerprint returns JSON body re-encoded canonically without the keys in
// ignore (at any depth), so that fields which change on every read, such as
// an uptime or a round-trip time, do not count as changes. A body that is
// not JSON, or nothing to ignore, leaves the body unchanged.
func Fingerprint(body []byte, ignore ...string) []byte {
	if len(ignore) == 0 {
		return body
	}
	var v any
	if json.Unmarshal(body, &v) != nil {
		return body
	}
	drop := map[string]bool{}
	for _, k := range ignore {
		drop[k] = true
	}
	var strip func(any)
	strip = func(v any) {
		switch t := v.(type) {
		case map[string]any:
			for k, x := range t {
				if drop[k] {
					delete(t, k)
					continue
				}
				strip(x)
			}
		case []any:
			for _, x := range t {
				strip(x)
			}
		}
	}
	strip(v)
	out, err := json.Marshal(v) // map keys come out sorted
	if err != nil {
		return body
	}
	return out
}
