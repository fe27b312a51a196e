package resilience

import "sync/atomic"

// counter is a statistics counter, safe for concurrent use.
type counter struct{ v atomic.Uint64 }

func (c *counter) add()         { c.v.Add(1) }
func (c *counter) load() uint64 { return c.v.Load() }

// setDefault sets *p to def if it is the zero value.
func setDefault[V comparable](p *V, def V) {
	var zero V
	if *p == zero {
		*p = def
	}
}
