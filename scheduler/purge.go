package scheduler

import (
	"context"
	"fmt"
)

// Purge forgets a destroyed instance this node requested: its record
// leaves Instances and the store. The newest contract known for it stays
// (m.best), so that a later request of the same name still gets a newer
// epoch and fences any copy left somewhere. An instance that is not
// destroyed is refused with ErrNotDestroyed.
func (m *Market) Purge(ctx context.Context, name string) error {
	var err error
	derr := m.do(ctx, func() {
		id := NewInstanceID(m.self, name)
		rec := m.records[id]
		if rec == nil || !rec.mine {
			err = fmt.Errorf("%w: %s", ErrNotFound, name)
			return
		}
		if v := m.view(rec); v.State != StateDestroyed || rec.auction != nil {
			err = fmt.Errorf("%w: %s is %s (destroy it first: weft request %s --state destroyed --wait)", ErrNotDestroyed, name, v.State, name)
			return
		}
		e := max(rec.maxEpoch, rec.lastEpoch)
		if b := m.best[id]; b != nil {
			e = max(e, b.Epoch())
		}
		m.purged[id] = e
		delete(m.records, id)
		if m.d.Store != nil {
			// After the record's queued writes, off the loop (effects).
			m.io.queue(effect{key: "r-" + string(id), del: true})
		}
	})
	if derr != nil {
		return derr
	}
	return err
}
