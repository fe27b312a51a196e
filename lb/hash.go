package lb

import (
	"github.com/sysdesign-go/sysdesign/shard"
)

// keyLocator maps a key to the index of one of the backends it was built
// over; the shard package's Ring and Maglev implement it.
type keyLocator interface {
	Locate(key string) int
}

// hashSetup builds a keyLocator over the backends in rotation, named by
// address and weighted, so that a backend leaving rotation moves only its
// own keys.
func hashSetup(newLocator func(nodes []shard.Node) (keyLocator, error)) algoSetup {
	return algoSetup{affinity: true, build: func(active []*endpoint, b *Balancer) (picker, error) {
		nodes := make([]shard.Node, len(active))
		for i, e := range active {
			nodes[i] = shard.Node{Name: e.b.Addr, Weight: e.weightNow()}
		}
		loc, err := newLocator(nodes)
		if err != nil {
			return nil, configErr(nil, "cannot build the hash table: %w", err)
		}
		return &hashPicker{eps: active, loc: loc, rng: &b.rng}, nil
	}}
}

type hashPicker struct {
	eps []*endpoint
	loc keyLocator
	rng *rng
}

func (p *hashPicker) pick(req Request, _ int64) *endpoint {
	if req.Key == "" {
		return p.eps[p.rng.intn(len(p.eps))]
	}
	return p.eps[p.loc.Locate(req.Key)]
}
