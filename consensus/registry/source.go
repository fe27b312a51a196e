package registry

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/sysdesign-go/sysdesign/consensus"
	"github.com/sysdesign-go/sysdesign/lb"
)

// Source is one service of a [Registry] as a discovery source for package
// lb: its Watch hands a balancer the service's passing instances as
// backends, so client-side discovery is a balancer fed by it inside the
// caller and server-side discovery is an [lb.Proxy] fed by it; [lb.Follow]
// keeps the balancer current, additions through slow start and removals
// drained.
type Source struct {
	w       watcher
	service string
}

// watcher is what a Source follows: a [Registry] or a [Client].
type watcher interface {
	Watch(ctx context.Context, service string, update func([]Instance)) error
}

// Source returns the discovery source of service.
func (r *Registry) Source(service string) *Source { return &Source{w: r, service: service} }

// Watch calls update with the service's passing instances as backends
// (Addr, Weight, Zone, Meta), once at the start and again after every
// change, until ctx is done or the watch fails; it returns ctx's error or
// the failure. update is never called concurrently.
func (s *Source) Watch(ctx context.Context, update func([]lb.Backend)) error {
	if update == nil {
		return fmt.Errorf("%w: nil update function", ErrInvalid)
	}
	return s.w.Watch(ctx, s.service, func(insts []Instance) { update(Backends(insts)) })
}

// Backends maps the passing instances to backends.
func Backends(insts []Instance) []lb.Backend {
	out := make([]lb.Backend, 0, len(insts))
	for _, inst := range insts {
		if inst.Status == Critical {
			continue
		}
		out = append(out, lb.Backend{Addr: inst.Addr, Weight: inst.Weight, Zone: inst.Zone, Meta: inst.Meta})
	}
	return out
}

// HealthTarget returns service's instances as an [lb.HealthTarget], for an
// [lb.HealthChecker] run beside the registry's leader (as Consul's agents
// run checks): every instance is probed, passing or critical, and a
// verdict marks the instance [Critical] (out of every Source's set) or
// [Passing] again, through the log, keeping its lease.
func (r *Registry) HealthTarget(service string) lb.HealthTarget {
	return &healthTarget{reg: r, service: service}
}

type healthTarget struct {
	reg     *Registry
	service string
}

// Backends lists every instance of the service, from the node's own state.
func (h *healthTarget) Backends() []lb.Backend {
	insts, _, err := h.reg.List(context.Background(), h.service, consensus.Stale)
	if err != nil {
		return nil
	}
	for i := range insts {
		insts[i].Status = Passing
	}
	return Backends(insts)
}

// SetHealthy writes the instance's status, unless it is unchanged.
func (h *healthTarget) SetHealthy(addr string, healthy bool) error {
	status := Critical
	if healthy {
		status = Passing
	}
	ctx, cancel := context.WithTimeout(context.Background(), checkTimeout)
	defer cancel()
	insts, _, err := h.reg.List(ctx, h.service, consensus.Stale)
	if err != nil {
		return err
	}
	for _, inst := range insts {
		if inst.Addr != addr {
			continue
		}
		key := h.reg.key(inst.Service, inst.ID)
		cur, err := h.reg.node.Get(ctx, key)
		if err != nil {
			return err
		}
		if err := json.Unmarshal(cur.Value, &inst); err != nil || inst.Status == status {
			return err
		}
		inst.Status = status
		value, err := json.Marshal(inst)
		if err != nil {
			return err
		}
		// Compare-and-swap: a re-registration in between wins.
		_, err = h.reg.node.CompareAndSwap(ctx, key, cur.Value, value, consensus.WithLease(cur.Lease))
		return err
	}
	return nil
}

// checkTimeout bounds the write of one health verdict.
const checkTimeout = 5 * time.Second
