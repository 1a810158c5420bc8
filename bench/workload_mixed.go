package bench

import "context"

// mixedWorkload runs browse and checkout ops side by side: of every
// BrowseWeight+CheckoutWeight ops, on average BrowseWeight are browse reads
// and CheckoutWeight are whole checkout flows.
type mixedWorkload struct {
	browse         *browseWorkload
	checkout       *checkoutWorkload
	browseWeight   int
	checkoutWeight int
}

func newMixedWorkload(cfg Config) *mixedWorkload {
	return &mixedWorkload{
		browse:         newBrowseWorkload(cfg),
		checkout:       newCheckoutWorkload(cfg),
		browseWeight:   cfg.BrowseWeight,
		checkoutWeight: cfg.CheckoutWeight,
	}
}

func (m *mixedWorkload) setup(ctx context.Context, env *runEnv) error {
	if err := m.browse.setup(ctx, env); err != nil {
		return err
	}
	return m.checkout.setup(ctx, env)
}

// op picks browse or checkout by the configured weights.
func (m *mixedWorkload) op(w *worker) {
	if w.rng.IntN(m.browseWeight+m.checkoutWeight) < m.browseWeight {
		m.browse.op(w)
		return
	}
	m.checkout.op(w)
}

func (m *mixedWorkload) progress() string { return m.checkout.progress() }

func (m *mixedWorkload) finish(ctx context.Context, env *runEnv, res *Result) error {
	return m.checkout.finish(ctx, env, res)
}
