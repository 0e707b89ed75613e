// Package jobs is the node's batch jobs on top of the market: the jobs run
// through POST /v1/jobs, their names (given, or derived from what they
// run), what a named job last ran, and their results. A finished job's
// instance is destroyed (its partition freed) once this node holds the
// result, and the job keeps showing that result. The registry persists in
// a directory so that a restart neither forgets to release a job nor which
// run its result belongs to.
//
// Usage:
//
//	js, err := jobs.Open(filepath.Join(dataDir, jobs.Dir), market, log)
//	job, err := js.Run(ctx, spec, named) // POST /v1/jobs
//	js.Release(ctx, view)                // once the result is held locally
//	job := js.View(view)                 // GET /v1/jobs/{id}
//
// Concurrency: a *Jobs is safe for concurrent use.
package jobs

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/weftgrid/weft/cmd/weft/internal/api"
	"github.com/weftgrid/weft/scheduler"
)

// Dir is where the node keeps the jobs run through POST /v1/jobs (one file
// per job, holding its result CID once this node holds the result) across
// restarts, inside the data directory.
const Dir = "market-jobs"

// Market is what jobs need of the market engine (*scheduler.Market).
type Market interface {
	Instance(name string) (scheduler.InstanceView, error)
	Instances() []scheduler.InstanceView
	Request(ctx context.Context, spec scheduler.RequestSpec) (scheduler.InstanceView, error)
	Purge(ctx context.Context, name string) error
}

// Jobs is the registry of the node's jobs.
type Jobs struct {
	market Market
	log    *slog.Logger
	// results maps a finished job's name to its result CID.
	results sync.Map
	// names are the jobs run through POST /v1/jobs (only those are
	// released when done; a batch type requested with weft request stays).
	names sync.Map
	// runs maps an explicitly named job to what it last ran (Name of its
	// recipe, type and params): only a run of the same job may be
	// answered with the finished one's result.
	runs sync.Map
	// times maps a job's name to when it was asked to run and when it
	// ended (a jobTimes).
	times sync.Map
	// store keeps names, results and runs across restarts (nil: not kept).
	store *scheduler.DirStore
	// Purged, if set before Routes, is called with the name of each
	// instance (job or not) purged, after the market forgot it.
	Purged func(name string)
}

// jobTimes is when a job was asked to run and when it ended (zero: not yet).
type jobTimes struct {
	Started time.Time
	Ended   time.Time
}

// key is a job's file name in Dir (a job name may start with a dot,
// which the store refuses).
func key(name string) string { return "j-" + name }

// record is a job's file in Dir.
type record struct {
	// Result is the result CID once this node holds the result.
	Result string `json:"result,omitempty"`
	// Run is what an explicitly named job last ran (see Jobs.runs).
	Run string `json:"run,omitempty"`
	// Started and Ended are when the job was asked to run and when this
	// node recorded its result.
	Started time.Time `json:"started,omitzero"`
	Ended   time.Time `json:"ended,omitzero"`
}

// Open returns the registry kept in dir ("" keeps nothing across
// restarts), loading the jobs it holds.
func Open(dir string, m Market, log *slog.Logger) (*Jobs, error) {
	if log == nil {
		log = slog.Default()
	}
	j := &Jobs{market: m, log: log}
	if dir == "" {
		return j, nil
	}
	js, err := scheduler.NewDirStore(dir)
	if err != nil {
		return nil, fmt.Errorf("jobs: dir: %w", err)
	}
	saved, err := js.Load()
	if err != nil {
		return nil, fmt.Errorf("jobs: dir: %w", err)
	}
	for k, b := range saved {
		name, ok := strings.CutPrefix(k, "j-")
		if !ok {
			continue
		}
		var rec record
		if err := json.Unmarshal(b, &rec); err != nil {
			rec = record{Result: string(b)} // a bare result CID
		}
		j.names.Store(name, true)
		if rec.Result != "" {
			j.results.Store(name, rec.Result)
		}
		if rec.Run != "" {
			j.runs.Store(name, rec.Run)
		}
		j.times.Store(name, jobTimes{rec.Started, rec.Ended})
	}
	j.store = js
	return j, nil
}

// save records a job (its result, once held, and for a named job what it
// last ran).
func (j *Jobs) save(name, result string) error {
	if j.store == nil {
		return nil
	}
	rec := record{Result: result}
	if run, ok := j.runs.Load(name); ok {
		rec.Run = run.(string)
	}
	if t, ok := j.times.Load(name); ok {
		rec.Started, rec.Ended = t.(jobTimes).Started, t.(jobTimes).Ended
	}
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	return j.store.Put(key(name), b)
}

// Name derives a job's name from what it runs, so that running the same
// job twice is idempotent.
func Name(recipeCID, typ string, params map[string]string) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00", recipeCID, typ)
	for _, k := range slices.Sorted(maps.Keys(params)) {
		fmt.Fprintf(h, "%s=%s\x00", k, params[k])
	}
	return "job-" + hex.EncodeToString(h.Sum(nil))[:16]
}

// Run runs the job spec (named: its name was given, not derived). The
// same job, already done, is answered with its result; otherwise the job
// is recorded (so that a restart still releases it once done) and
// requested from the market.
func (j *Jobs) Run(ctx context.Context, spec scheduler.RequestSpec, named bool) (api.Job, error) {
	fingerprint := Name(spec.RecipeCID, spec.SoftwareType, spec.Params)
	same := !named
	if named {
		last, ok := j.runs.Load(spec.Name)
		same = ok && last.(string) == fingerprint
	}
	if prev, err := j.market.Instance(spec.Name); err == nil && same {
		if v := j.View(prev); v.State == "done" && v.Result != "" {
			return v, nil // same job, already done
		}
	}
	if _, known := j.names.Load(spec.Name); !known || named {
		// Recorded before the request (with, for a named job, what it
		// runs now), so that a restart does not forget to release it
		// once done, nor which run its result belongs to.
		if err := scheduler.ValidateName(spec.Name); err != nil {
			return api.Job{}, err
		}
		if named {
			j.runs.Store(spec.Name, fingerprint)
		}
		j.times.Store(spec.Name, jobTimes{Started: time.Now()})
		if err := j.save(spec.Name, ""); err != nil {
			return api.Job{}, fmt.Errorf("market: recording job %s: %w", spec.Name, err)
		}
		j.names.Store(spec.Name, true)
	}
	v, err := j.market.Request(ctx, spec)
	if err != nil {
		return api.Job{}, err
	}
	return j.View(v), nil
}

// Release records a finished job's result and destroys its instance,
// freeing the host's partition (the result stays in the content stores).
// Instances that are not jobs of this registry are left alone.
func (j *Jobs) Release(ctx context.Context, v scheduler.InstanceView) {
	if _, ok := j.names.Load(v.Name); !ok {
		return
	}
	if cur, err := j.market.Instance(v.Name); err == nil && cur.Generation != v.Generation {
		return // the job was asked again since (another run): not this result's to release
	}
	j.results.Store(v.Name, v.Result)
	t, _ := j.times.Load(v.Name)
	jt, _ := t.(jobTimes)
	jt.Ended = time.Now()
	j.times.Store(v.Name, jt)
	if err := j.save(v.Name, v.Result); err != nil {
		j.log.Warn("market: recording a finished job", "job", v.Name, "err", err)
	}
	spec := scheduler.RequestSpec{Name: v.Name, RecipeCID: v.RecipeCID, SoftwareType: v.SoftwareType, Resources: v.Resources,
		State: scheduler.StateDestroyed, Batch: true}
	if _, err := j.market.Request(ctx, spec); err != nil && ctx.Err() == nil {
		j.log.Warn("market: releasing a finished job", "job", v.Name, "err", err)
	}
}

// View is the job an instance view shows.
func (j *Jobs) View(v scheduler.InstanceView) api.Job {
	st := v.State.String()
	if v.State == scheduler.StateStarted || v.State == scheduler.StateStopped {
		st = "running"
	}
	if v.Node != "" && v.StatusGeneration < v.Generation && v.State != scheduler.StateDestroyed {
		// The host's status is the earlier run's: its done or failed is
		// not this run's outcome (scheduler.Reached).
		st, v.Result, v.Reason = "running", "", "the host is applying the new run"
	}
	if r, ok := j.results.Load(v.Name); ok && v.RequestedState == scheduler.StateDestroyed {
		st, v.Result, v.Reason = scheduler.StateDone.String(), r.(string), ""
	}
	return api.Job{ID: v.Name, InstanceID: string(v.InstanceID), Node: v.Node, State: st, Result: v.Result, Reason: v.Reason,
		Retries: v.Retries, Recipe: v.RecipeCID, Updated: v.UpdatedAt}
}
