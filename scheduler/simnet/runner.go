package simnet

import (
	"context"
	"fmt"
	"sync"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/weftgrid/weft/scheduler"
)

// Runner is a fake scheduler.Runner: instances reach their state at once;
// the connection parameters name the node and the epoch.
type Runner struct {
	self       peer.ID
	mu         sync.Mutex
	total      scheduler.Resources
	partitions int
	inst       map[scheduler.InstanceID]*fakeInstance
	// Fail, if set, makes Apply of a started instance fail with this reason.
	fail string
	// Applies counts Apply calls.
	applies int
}

type fakeInstance struct {
	spec   scheduler.InstanceSpec
	status scheduler.RunStatus
}

var _ scheduler.Runner = (*Runner)(nil)

// NewRunner returns a runner with this capacity.
func NewRunner(self peer.ID, total scheduler.Resources, partitions int) *Runner {
	return &Runner{self: self, total: total, partitions: partitions, inst: map[scheduler.InstanceID]*fakeInstance{}}
}

// SetFail makes later starts fail (batch jobs fail, services report failed).
func (r *Runner) SetFail(reason string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.fail = reason
}

// Apply implements scheduler.Runner.
func (r *Runner) Apply(ctx context.Context, spec scheduler.InstanceSpec) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.applies++
	if spec.State == scheduler.StateDestroyed {
		delete(r.inst, spec.Instance)
		return nil
	}
	fi := r.inst[spec.Instance]
	if fi == nil {
		fi = &fakeInstance{}
		r.inst[spec.Instance] = fi
	}
	fi.spec = spec
	switch {
	case r.fail != "":
		fi.status = scheduler.RunStatus{State: scheduler.StateFailed, Reason: r.fail}
	case spec.Batch && spec.State == scheduler.StateStarted:
		fi.status = scheduler.RunStatus{State: scheduler.StateDone, Result: "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"}
	case spec.State == scheduler.StateStarted:
		fi.status = scheduler.RunStatus{State: scheduler.StateStarted, Connection: map[string]string{
			"url": fmt.Sprintf("http://%s/%s", r.self.ShortString(), spec.Name), "host": r.self.String(), "epoch": fmt.Sprint(spec.Epoch)}}
	default:
		fi.status = scheduler.RunStatus{State: spec.State}
	}
	return nil
}

// Status implements scheduler.Runner.
func (r *Runner) Status(id scheduler.InstanceID) (scheduler.RunStatus, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	fi := r.inst[id]
	if fi == nil {
		return scheduler.RunStatus{}, false
	}
	return fi.status, true
}

// SetHealth sets the health a started instance reports (a failing anomaly
// promise, a crash loop), with a last exit.
func (r *Runner) SetHealth(id scheduler.InstanceID, h scheduler.Health, lastExit string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if fi := r.inst[id]; fi != nil {
		fi.status.Health, fi.status.LastExit = h, lastExit
	}
}

// Capacity implements scheduler.Runner.
func (r *Runner) Capacity() (total, free scheduler.Resources, freePartitions int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	free = r.total
	for _, fi := range r.inst {
		free = free.Sub(fi.spec.Resources)
	}
	return r.total, free, r.partitions - len(r.inst)
}

// Instances returns the IDs of the instances present.
func (r *Runner) Instances() []scheduler.InstanceID {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]scheduler.InstanceID, 0, len(r.inst))
	for id := range r.inst {
		out = append(out, id)
	}
	return out
}
