package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/sysdesign-go/sysdesign/consensus"
)

// Sentinel errors; every error the package returns wraps one of these or
// one of package consensus (such as [consensus.ErrNotLeader]).
var (
	// ErrInvalid reports a bad argument: an empty service name, id or
	// address, a TTL of zero or below the minimum, a bad weight.
	ErrInvalid = errors.New("registry: invalid argument")
	// ErrDuplicateInstance reports a registration whose service and id
	// are registered already with a different address.
	ErrDuplicateInstance = errors.New("registry: duplicate instance id")
	// ErrNotRegistered reports a heartbeat of an unknown, expired or
	// deregistered registration, or the deregistration of an unknown
	// instance: register again.
	ErrNotRegistered = errors.New("registry: not registered")
)

// Status is an instance's health, as Consul's: passing instances are in
// rotation, critical ones are not.
type Status string

const (
	// Passing is the status of a registered instance until an active
	// check fails it.
	Passing Status = "passing"
	// Critical marks an instance whose active health check failed
	// ([Registry.HealthTarget]).
	Critical Status = "critical"
)

// Instance is one running instance of a service.
type Instance struct {
	// Service names the service; it may not contain "/".
	Service string `json:"service"`
	// ID identifies the instance within its service; it may not contain
	// "/".
	ID string `json:"id"`
	// Addr is where the instance serves ("host:port" or a URL).
	Addr string `json:"addr"`
	// Zone is the instance's zone, for zone-aware balancing. Optional.
	Zone string `json:"zone,omitempty"`
	// Weight is the instance's capacity relative to the others (> 0).
	// Zero means 1.
	Weight float64 `json:"weight,omitempty"`
	// Meta is free-form metadata.
	Meta map[string]string `json:"meta,omitempty"`
	// Status is set by the registry: [Passing] at registration, [Critical]
	// while an active check fails.
	Status Status `json:"status"`
}

// Registration is a registered instance and the lease that keeps it.
type Registration struct {
	Instance Instance
	// Lease keeps the instance registered while [Registry.Heartbeat]
	// renews it.
	Lease consensus.LeaseID
	// TTL is the lease's time to live.
	TTL time.Duration
	// Revision is the store revision of the registration.
	Revision uint64
}

// Options configures a [Registry]. The zero value is ready to use.
type Options struct {
	// Prefix is where the registry keeps its keys in the store. Empty
	// means "registry/".
	Prefix string
	// MinTTL is the shortest registration TTL accepted. The node's own
	// minimum ([consensus.Options.MinLeaseTTL]) also applies. Zero means
	// one second.
	MinTTL time.Duration
}

// Registry is a service registry on a [consensus.Node], as etcd and
// Consul serve one: each instance is a key under a lease that its
// heartbeats keep alive, so an instance that stops heartbeating leaves
// within its TTL (plus the lease sweep's bound, see
// [consensus.Node.GrantLease]), and clients follow a service through a
// watch. Writes (Register, Heartbeat, Deregister) go to the leader: on a
// follower they fail with a [*consensus.NotLeaderError] naming it; reads
// and watches are served by any node.
//
// A Registry owns no goroutine and is safe for concurrent use.
type Registry struct {
	node *consensus.Node
	opts Options
}

// New returns a registry stored on node.
func New(node *consensus.Node, opts Options) (*Registry, error) {
	if node == nil {
		return nil, fmt.Errorf("%w: nil node", ErrInvalid)
	}
	if opts.MinTTL < 0 {
		return nil, fmt.Errorf("%w: negative MinTTL %v", ErrInvalid, opts.MinTTL)
	}
	if opts.Prefix == "" {
		opts.Prefix = "registry/"
	}
	if opts.MinTTL == 0 {
		opts.MinTTL = time.Second
	}
	return &Registry{node: node, opts: opts}, nil
}

// maxAttempts bounds Register's retries when the key changes under it.
const maxAttempts = 8

func (r *Registry) key(service, id string) string { return r.opts.Prefix + service + "/" + id }

func validName(what, s string) error {
	if s == "" {
		return fmt.Errorf("%w: empty %s", ErrInvalid, what)
	}
	if strings.Contains(s, "/") {
		return fmt.Errorf("%w: %s %q contains \"/\"", ErrInvalid, what, s)
	}
	return nil
}

func (inst *Instance) validate() error {
	if err := validName("service name", inst.Service); err != nil {
		return err
	}
	if err := validName("instance id", inst.ID); err != nil {
		return err
	}
	if inst.Addr == "" {
		return fmt.Errorf("%w: instance %s/%s: empty address", ErrInvalid, inst.Service, inst.ID)
	}
	if inst.Weight < 0 || math.IsNaN(inst.Weight) || math.IsInf(inst.Weight, 0) {
		return fmt.Errorf("%w: instance %s/%s: weight %v (must be > 0, or 0 for 1)", ErrInvalid, inst.Service, inst.ID, inst.Weight)
	}
	return nil
}

// Register grants a lease of ttl and registers inst under it as
// [Passing]. Registering the same service and id again with the same
// address (an instance that restarted) moves it to the new lease; with a
// different address it fails with [ErrDuplicateInstance] and changes
// nothing.
func (r *Registry) Register(ctx context.Context, inst Instance, ttl time.Duration) (Registration, error) {
	if err := inst.validate(); err != nil {
		return Registration{}, err
	}
	if ttl < r.opts.MinTTL {
		return Registration{}, fmt.Errorf("%w: instance %s/%s: TTL %v below the minimum %v", ErrInvalid, inst.Service, inst.ID, ttl, r.opts.MinTTL)
	}
	if inst.Weight == 0 {
		inst.Weight = 1
	}
	inst.Meta = maps.Clone(inst.Meta)
	inst.Status = Passing
	value, err := json.Marshal(inst)
	if err != nil {
		return Registration{}, fmt.Errorf("%w: instance %s/%s: %v", ErrInvalid, inst.Service, inst.ID, err)
	}
	lease, err := r.node.GrantLease(ctx, ttl)
	if errors.Is(err, consensus.ErrInvalidArgument) {
		return Registration{}, fmt.Errorf("%w: instance %s/%s: %w", ErrInvalid, inst.Service, inst.ID, err)
	}
	if err != nil {
		return Registration{}, err
	}
	key := r.key(inst.Service, inst.ID)
	var kv consensus.KV
	for range maxAttempts { // each attempt loses only to a concurrent change of the key
		if kv, err = r.node.Create(ctx, key, value, consensus.WithLease(lease.ID)); !errors.Is(err, consensus.ErrKeyExists) {
			break
		}
		var cur consensus.KV
		if cur, err = r.node.Get(ctx, key); errors.Is(err, consensus.ErrKeyNotFound) {
			continue // expired meanwhile
		} else if err != nil {
			break
		}
		var old Instance
		if json.Unmarshal(cur.Value, &old) == nil && old.Addr != inst.Addr {
			err = fmt.Errorf("%w: %s/%s is registered at %s, not %s", ErrDuplicateInstance, inst.Service, inst.ID, old.Addr, inst.Addr)
			break
		}
		kv, err = r.node.CompareAndSwap(ctx, key, cur.Value, value, consensus.WithLease(lease.ID))
		if !errors.Is(err, consensus.ErrCompareFailed) && !errors.Is(err, consensus.ErrKeyNotFound) {
			break
		}
	}
	if err != nil {
		_ = r.node.RevokeLease(ctx, lease.ID) // best effort: it expires anyway
		return Registration{}, err
	}
	return Registration{Instance: inst, Lease: lease.ID, TTL: lease.TTL, Revision: kv.Revision}, nil
}

// Heartbeat renews a registration's lease for its TTL. It fails with
// [ErrNotRegistered] once the lease has expired or was revoked: the
// instance has left every client's view and must register again.
func (r *Registry) Heartbeat(ctx context.Context, lease consensus.LeaseID) error {
	_, err := r.node.KeepAlive(ctx, lease)
	if errors.Is(err, consensus.ErrLeaseNotFound) {
		return fmt.Errorf("%w: %w", ErrNotRegistered, err)
	}
	return err
}

// Deregister removes an instance at once (revoking its lease). An unknown
// instance fails with [ErrNotRegistered].
func (r *Registry) Deregister(ctx context.Context, service, id string) error {
	if err := validName("service name", service); err != nil {
		return err
	}
	if err := validName("instance id", id); err != nil {
		return err
	}
	kv, err := r.node.Get(ctx, r.key(service, id))
	if err == nil && kv.Lease != 0 {
		err = r.node.RevokeLease(ctx, kv.Lease)
	} else if err == nil {
		_, err = r.node.Delete(ctx, kv.Key)
	}
	if errors.Is(err, consensus.ErrKeyNotFound) || errors.Is(err, consensus.ErrLeaseNotFound) {
		return fmt.Errorf("%w: %s/%s: %w", ErrNotRegistered, service, id, err)
	}
	return err
}

// List returns a service's instances, sorted by id, and the store revision
// they reflect (to watch from its next revision).
func (r *Registry) List(ctx context.Context, service string, mode consensus.ReadMode) ([]Instance, uint64, error) {
	if err := validName("service name", service); err != nil {
		return nil, 0, err
	}
	kvs, rev, err := r.node.Range(ctx, r.opts.Prefix+service+"/", mode)
	if err != nil {
		return nil, 0, err
	}
	out := make([]Instance, 0, len(kvs))
	for _, kv := range kvs {
		var inst Instance
		if json.Unmarshal(kv.Value, &inst) == nil {
			out = append(out, inst)
		}
	}
	return out, rev, nil
}

// Watch calls update with the service's complete instance set (sorted by
// id), once at the start and again after every change, until ctx ends or
// the watch fails; it returns ctx's error or the failure. It reads the
// registry's own node, leader or follower, and re-lists by itself when the
// node's history no longer holds its position ([consensus.ErrCompacted]).
// update is never called concurrently.
func (r *Registry) Watch(ctx context.Context, service string, update func([]Instance)) error {
	if err := validName("service name", service); err != nil {
		return err
	}
	if update == nil {
		return fmt.Errorf("%w: nil update function", ErrInvalid)
	}
	prefix := r.opts.Prefix + service + "/"
	for {
		insts, rev, err := r.List(ctx, service, consensus.Stale)
		if err != nil {
			return err
		}
		set := make(map[string]Instance, len(insts))
		for _, inst := range insts {
			set[inst.ID] = inst
		}
		update(sorted(set))
		w, err := r.node.Watch(prefix, consensus.WatchOptions{Prefix: true, From: rev + 1})
		if err != nil {
			return err
		}
		for {
			evs, err := w.Recv(ctx)
			if errors.Is(err, consensus.ErrCompacted) {
				break // re-list
			}
			if err != nil {
				return err
			}
			for _, e := range evs {
				id := strings.TrimPrefix(e.KV.Key, prefix)
				var inst Instance
				if e.Type == consensus.EventDelete || json.Unmarshal(e.KV.Value, &inst) != nil {
					delete(set, id)
					continue
				}
				set[id] = inst
			}
			update(sorted(set))
		}
	}
}

func sorted(set map[string]Instance) []Instance {
	out := slices.Collect(maps.Values(set))
	slices.SortFunc(out, func(a, b Instance) int { return strings.Compare(a.ID, b.ID) })
	return out
}
