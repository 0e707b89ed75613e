package scheduler

import (
	"context"
	"maps"
)

// Spec returns the spec of the latest request this node made for name
// (ok false when it requested none): what a re-request that names no
// recipe, parameters or constraints reuses.
func (m *Market) Spec(ctx context.Context, name string) (spec RequestSpec, ok bool) {
	_ = m.do(ctx, func() {
		rec := m.records[NewInstanceID(m.self, name)]
		if rec == nil || !rec.mine {
			return
		}
		r := rec.req
		spec = RequestSpec{
			Name: r.Name, RecipeCID: r.RecipeCID, SoftwareType: r.SoftwareType, Params: maps.Clone(r.Params),
			Resources: r.Resources, Constraints: r.Constraints, State: r.State, Grace: r.Grace,
			WaitForCapacity: r.WaitForCapacity, Batch: r.Batch, MaxRetries: r.MaxRetries,
		}
		ok = true
	})
	return spec, ok
}

// ReuseParams is the parameters of a re-request: the previous request's,
// minus those the (possibly new) recipe does not declare (declared false),
// with the values given now overriding them one by one.
func ReuseParams(prev, given map[string]string, declared func(string) bool) map[string]string {
	out := map[string]string{}
	for k, v := range prev {
		if declared == nil || declared(k) {
			out[k] = v
		}
	}
	maps.Copy(out, given)
	if len(out) == 0 {
		return nil
	}
	return out
}

// ReuseConstraints copies the previous request's constraints and the
// settings written as constraints (grace, wait_for_capacity) into spec: a
// re-request without --sla keeps them. The guardians are chosen afresh
// from the live membership, as for any request.
func ReuseConstraints(spec *RequestSpec, prev RequestSpec) {
	spec.Constraints = prev.Constraints
	spec.Grace, spec.WaitForCapacity = prev.Grace, prev.WaitForCapacity
}
