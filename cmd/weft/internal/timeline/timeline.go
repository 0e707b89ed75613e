// Package timeline keeps, on a requester's node, the history of each
// instance it requested or guards: requested, auctioned (bids and
// declines), awarded (node, epoch, price), installing, started, promise
// failing and recovered, process restarted (exit status), host lost,
// re-placed (why), fenced, stopped, destroyed, done, waiting, failed.
// The entries are derived (Derive, a pure function) from the market's
// events — the signed statuses of hosts and this node's own auctions — and
// kept per instance in a bounded file, so that a restart keeps them.
//
// Usage:
//
//	tl, err := timeline.Open(filepath.Join(dataDir, timeline.Dir), 0, log)
//	cancel := market.Observe(tl.Observe)
//	tl.Routes(apiServer, market)   // GET /v1/instances/{name}/events, .../why
//	defer tl.Close()
//
// Concurrency: a *Timeline is safe for concurrent use. Observe never
// blocks (it is called on the market's state loop): events queue for a
// goroutine that derives and writes the entries; beyond QueueSize they are
// dropped and counted.
package timeline

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"time"

	"github.com/weftgrid/weft/cmd/weft/internal/api"
	"github.com/weftgrid/weft/recipes/atomicfile"
	"github.com/weftgrid/weft/scheduler"
)

// Dir is where the node keeps the timelines, inside its data directory.
const Dir = "timeline"

// DefaultMax is how many entries a timeline keeps (the oldest go first).
const DefaultMax = 200

// QueueSize bounds the market events waiting to be derived.
const QueueSize = 1024

// Timeline is the node's instance timelines.
type Timeline struct {
	dir string
	max int
	log *slog.Logger
	now func() time.Time

	queue   chan scheduler.Event
	done    chan struct{}
	closing chan struct{}
	once    sync.Once

	mu      sync.Mutex
	byID    map[scheduler.InstanceID]*instance
	subs    map[scheduler.InstanceID]map[chan api.Event]struct{}
	dropped uint64
}

type instance struct {
	last   *scheduler.InstanceView
	events []api.Event
}

// file is a timeline's file: the entries and the last view seen.
type file struct {
	Events []api.Event             `json:"events"`
	Last   *scheduler.InstanceView `json:"last,omitempty"`
}

var idRe = regexp.MustCompile(`^[A-Za-z0-9_-]{1,128}$`)

// Open loads the timelines kept in dir (created if missing; "" keeps
// nothing across restarts) and starts the goroutine that derives entries.
// max bounds each timeline (0: DefaultMax).
func Open(dir string, max int, log *slog.Logger) (*Timeline, error) {
	if max <= 0 {
		max = DefaultMax
	}
	if log == nil {
		log = slog.Default()
	}
	t := &Timeline{dir: dir, max: max, log: log, now: time.Now, queue: make(chan scheduler.Event, QueueSize),
		done: make(chan struct{}), closing: make(chan struct{}),
		byID: map[scheduler.InstanceID]*instance{}, subs: map[scheduler.InstanceID]map[chan api.Event]struct{}{}}
	if dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("timeline: %w", err)
		}
		ents, err := os.ReadDir(dir)
		if err != nil {
			return nil, fmt.Errorf("timeline: %w", err)
		}
		for _, e := range ents {
			name := e.Name()
			if filepath.Ext(name) != ".json" || !idRe.MatchString(name[:len(name)-5]) {
				continue
			}
			b, err := os.ReadFile(filepath.Join(dir, name))
			if err != nil {
				continue
			}
			var f file
			if json.Unmarshal(b, &f) != nil {
				log.Warn("timeline: unreadable file skipped", "file", name)
				continue
			}
			if len(f.Events) > max {
				f.Events = f.Events[len(f.Events)-max:]
			}
			t.byID[scheduler.InstanceID(name[:len(name)-5])] = &instance{last: f.Last, events: f.Events}
		}
	}
	go t.run()
	return t, nil
}

// Observe takes a market event (scheduler.Market.Observe): it never blocks.
func (t *Timeline) Observe(ev scheduler.Event) {
	switch ev.Kind {
	case scheduler.EventRequested, scheduler.EventPlaced, scheduler.EventUnplaced, scheduler.EventStatus:
	default:
		return // the host side (hosting, fenced): not a requester's timeline
	}
	select {
	case t.queue <- ev:
	default:
		t.mu.Lock()
		t.dropped++
		t.mu.Unlock()
	}
}

// Close stops the goroutine after it derived what was queued. It is
// idempotent.
func (t *Timeline) Close() error {
	t.once.Do(func() { close(t.closing) })
	<-t.done
	return nil
}

func (t *Timeline) run() {
	defer close(t.done)
	for {
		select {
		case ev := <-t.queue:
			t.apply(ev)
		case <-t.closing:
			for {
				select {
				case ev := <-t.queue:
					t.apply(ev)
				default:
					return
				}
			}
		}
	}
}

// apply derives ev's entries, appends them and writes the file.
func (t *Timeline) apply(ev scheduler.Event) {
	id := ev.Instance.InstanceID
	if !idRe.MatchString(string(id)) {
		return
	}
	t.mu.Lock()
	in := t.byID[id]
	if in == nil {
		in = &instance{}
		t.byID[id] = in
	}
	added := Derive(in.last, ev, t.now())
	v := ev.Instance
	in.last = &v
	in.events = append(in.events, added...)
	if len(in.events) > t.max {
		in.events = append([]api.Event(nil), in.events[len(in.events)-t.max:]...)
	}
	f := file{Events: in.events, Last: in.last}
	for ch := range t.subs[id] {
		for _, e := range added {
			select {
			case ch <- e:
			default: // a slow follower misses entries rather than stall the node
			}
		}
	}
	t.mu.Unlock()
	if t.dir == "" || (len(added) == 0 && ev.Kind == scheduler.EventStatus) {
		return
	}
	if err := writeFile(filepath.Join(t.dir, string(id)+".json"), f); err != nil {
		t.log.Warn("timeline: write", "instance", id, "err", err)
	}
}

func writeFile(path string, f file) error {
	b, err := json.Marshal(f)
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(path, b) // its temporary name does not end in .json: Open skips it
}

// Events returns an instance's timeline, oldest first (an empty slice
// when it has none).
func (t *Timeline) Events(id scheduler.InstanceID) []api.Event {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := []api.Event{}
	if in := t.byID[id]; in != nil {
		out = append(out, in.events...)
	}
	return out
}

// Follow returns the timeline so far and a channel of the entries added
// after it; cancel ends the subscription.
func (t *Timeline) Follow(id scheduler.InstanceID) (past []api.Event, next <-chan api.Event, cancel func()) {
	ch := make(chan api.Event, 64)
	t.mu.Lock()
	if in := t.byID[id]; in != nil {
		past = append(past, in.events...)
	}
	if t.subs[id] == nil {
		t.subs[id] = map[chan api.Event]struct{}{}
	}
	t.subs[id][ch] = struct{}{}
	t.mu.Unlock()
	return past, ch, func() {
		t.mu.Lock()
		delete(t.subs[id], ch)
		if len(t.subs[id]) == 0 {
			delete(t.subs, id)
		}
		t.mu.Unlock()
	}
}

// Forget drops an instance's timeline (its record was purged).
func (t *Timeline) Forget(id scheduler.InstanceID) {
	t.mu.Lock()
	delete(t.byID, id)
	t.mu.Unlock()
	if t.dir != "" && idRe.MatchString(string(id)) {
		if err := os.Remove(filepath.Join(t.dir, string(id)+".json")); err != nil && !errors.Is(err, os.ErrNotExist) {
			t.log.Warn("timeline: forget", "instance", id, "err", err)
		}
	}
}

// Dropped counts the market events dropped because the queue was full.
func (t *Timeline) Dropped() uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.dropped
}
