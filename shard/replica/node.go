package replica

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/sysdesign-go/sysdesign/shard"
)

// Placement is what this package needs of a shard placement: the preference
// list of a key, its first n distinct nodes in the placement's order.
// [*shard.Ring] implements it (Dynamo's and Cassandra's choice: the next
// nodes clockwise from the key).
type Placement interface {
	shard.Placement
	AppendN(dst []int, key string, n int) []int
}

var _ Placement = (*shard.Ring)(nil)

// DefaultMaxValueSize is the largest value a node or a coordinator accepts
// when its configuration leaves MaxValueSize zero: 1 MiB, Cassandra's
// recommended ceiling for a cell.
const DefaultMaxValueSize = 1 << 20

// NodeConfig configures [NewNode].
type NodeConfig struct {
	// Name is the node's name in the placement and on the transport.
	// Required.
	Name string
	// Store keeps the node's records. Nil means a new [MemStore].
	Store Store
	// Hints keeps the writes this node holds for other nodes under a
	// sloppy quorum, until [Node.HandOff] delivers them. Nil means a new
	// [MemStore].
	Hints Store
	// Placement and N tell anti-entropy which keys this node shares with a
	// peer: those whose first N nodes include both. Placement is required;
	// N zero means 3.
	Placement Placement
	N         int
	// Transport reaches the other nodes, for [Node.HandOff] and
	// [Node.AntiEntropy]. Nil means the node only serves requests.
	Transport Transport
	// MaxValueSize bounds a value; zero means [DefaultMaxValueSize].
	MaxValueSize int
}

// Node is one replica: it serves the requests of coordinators and other
// nodes ([Node.Handle]) on its local [Store], holds hints for nodes that
// were down, and runs hinted handoff and anti-entropy when its owner calls
// them — it starts no goroutine of its own. It is safe for concurrent use.
type Node struct {
	cfg NodeConfig
	mu  sync.Mutex // serialises read-merge-write on the stores
}

var _ Handler = (*Node)(nil)

// NewNode validates cfg and returns a node. Errors wrap
// [ErrInvalidArgument].
func NewNode(cfg NodeConfig) (*Node, error) {
	if cfg.Name == "" || strings.ContainsRune(cfg.Name, 0) {
		return nil, fmt.Errorf("%w: node name %q (want a non-empty name without NUL)", ErrInvalidArgument, cfg.Name)
	}
	if cfg.Placement == nil {
		return nil, fmt.Errorf("%w: node %q has no placement", ErrInvalidArgument, cfg.Name)
	}
	if !slices.ContainsFunc(cfg.Placement.Nodes(), func(n shard.Node) bool { return n.Name == cfg.Name }) {
		return nil, fmt.Errorf("%w: node %q is not in the placement", ErrInvalidArgument, cfg.Name)
	}
	var err error
	if cfg.N, err = defaultPositive("N", cfg.N, 3); err != nil {
		return nil, err
	}
	if cfg.MaxValueSize, err = defaultPositive("MaxValueSize", cfg.MaxValueSize, DefaultMaxValueSize); err != nil {
		return nil, err
	}
	if cfg.Store == nil {
		cfg.Store = new(MemStore)
	}
	if cfg.Hints == nil {
		cfg.Hints = new(MemStore)
	}
	return &Node{cfg: cfg}, nil
}

// defaultPositive returns v, or def when v is zero; a negative v is an
// error naming the field.
func defaultPositive(name string, v, def int) (int, error) {
	switch {
	case v < 0:
		return 0, fmt.Errorf("%w: %s = %d (want ≥ 0; 0 for the default %d)", ErrInvalidArgument, name, v, def)
	case v == 0:
		return def, nil
	}
	return v, nil
}

// Name returns the node's name.
func (n *Node) Name() string { return n.cfg.Name }

// Handle serves one request. It is what a [Transport] calls on the node's
// side.
func (n *Node) Handle(ctx context.Context, req *Request) (*Response, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if req == nil {
		return nil, fmt.Errorf("%w: nil request", ErrInvalidArgument)
	}
	switch req.Op {
	case OpGet, OpCoordinate, OpReplicate:
		if req.Key == "" {
			return nil, fmt.Errorf("%w: %s with an empty key", ErrInvalidArgument, req.Op)
		}
	}
	switch req.Op {
	case OpGet:
		r, ok, err := n.cfg.Store.Get(req.Key)
		if err != nil {
			return nil, err
		}
		return &Response{Key: req.Key, Found: ok, Record: &r}, nil
	case OpCoordinate:
		r, err := n.coordinate(req)
		if err != nil {
			return nil, err
		}
		return &Response{Key: req.Key, Found: true, Record: &r}, nil
	case OpReplicate:
		if req.Record == nil {
			return nil, fmt.Errorf("%w: replicate %q without a record", ErrInvalidArgument, req.Key)
		}
		if err := req.Record.validate(n.cfg.MaxValueSize); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalidArgument, err)
		}
		r, err := n.replicate(req.Key, req.Hint, *req.Record)
		if err != nil {
			return nil, err
		}
		return &Response{Key: req.Key, Found: true, Record: &r}, nil
	case OpTree:
		hashes, err := n.treeHashes(req.Peer, req.Level, req.Indices, req.Depth)
		if err != nil {
			return nil, err
		}
		return &Response{Hashes: hashes}, nil
	case OpBucket:
		keys, err := n.bucketKeys(req.Peer, req.Depth, req.Indices)
		if err != nil {
			return nil, err
		}
		return &Response{Keys: keys}, nil
	}
	return nil, fmt.Errorf("%w: unknown op %v", ErrInvalidArgument, req.Op)
}

// coordinate gives a write a dot of this node — one past the node's
// counter in the key's clock, so no two writes share one — and merges it
// into the local record: the siblings its causal context covers are gone.
func (n *Node) coordinate(req *Request) (Record, error) {
	if len(req.Value) > n.cfg.MaxValueSize {
		return Record{}, fmt.Errorf("%w: %d bytes for key %q (at most %d)", ErrValueTooLarge, len(req.Value), req.Key, n.cfg.MaxValueSize)
	}
	for node, c := range req.Context {
		if node == "" || c == 0 {
			return Record{}, fmt.Errorf("%w: context entry %q: %d", ErrInvalidContext, node, c)
		}
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	cur, _, err := n.cfg.Store.Get(req.Key)
	if err != nil {
		return Record{}, err
	}
	dot := Dot{Node: n.cfg.Name, Counter: max(cur.Clock[n.cfg.Name], req.Context[n.cfg.Name]) + 1}
	w := Record{
		Siblings: []Sibling{{Value: req.Value, Dot: dot, Past: req.Context, Time: req.Time}},
		Clock:    req.Context.Join(VersionVector{dot.Node: dot.Counter}),
		LWW:      req.LWW,
	}
	merged := merge(cur, w)
	if err := n.cfg.Store.Put(req.Key, merged); err != nil {
		return Record{}, err
	}
	return merged, nil
}

// replicate merges r into the local record of key, or into the hint kept
// for node hint.
func (n *Node) replicate(key, hint string, r Record) (Record, error) {
	store, skey := n.cfg.Store, key
	if hint != "" && hint != n.cfg.Name {
		if strings.ContainsRune(hint, 0) {
			return Record{}, fmt.Errorf("%w: hint for node %q", ErrInvalidArgument, hint)
		}
		store, skey = n.cfg.Hints, hintKey(hint, key)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	cur, ok, err := store.Get(skey)
	if err != nil {
		return Record{}, err
	}
	merged := merge(cur, r)
	if ok && merged.equal(cur) {
		return cur, nil
	}
	return merged, store.Put(skey, merged)
}

// hintKey is the key of a hint for node target in the hints store.
func hintKey(target, key string) string { return target + "\x00" + key }

// HandOff delivers the hints this node holds to the nodes they were meant
// for (Dynamo's hinted handoff) and deletes each one its node acknowledged.
// It returns how many it delivered; a node still unreachable keeps its
// hints for the next call, and the error says which nodes failed. The owner
// runs it periodically, or when a node comes back.
func (n *Node) HandOff(ctx context.Context) (int, error) {
	if n.cfg.Transport == nil {
		return 0, fmt.Errorf("%w: node %q has no transport", ErrInvalidArgument, n.cfg.Name)
	}
	type hint struct {
		target, key string
		r           Record
	}
	var hints []hint
	if err := n.cfg.Hints.Range(func(k string, r Record) bool {
		target, key, _ := strings.Cut(k, "\x00")
		hints = append(hints, hint{target, key, r})
		return true
	}); err != nil {
		return 0, err
	}
	delivered := 0
	failed := map[string]error{}
	for _, h := range hints {
		if failed[h.target] != nil {
			continue
		}
		if _, err := n.cfg.Transport.Call(ctx, h.target, &Request{Op: OpReplicate, Key: h.key, Record: &h.r}); err != nil {
			failed[h.target] = err
			continue
		}
		if err := n.dropHint(h.target, h.key, h.r); err != nil {
			return delivered, err
		}
		delivered++
	}
	var errs []error
	for _, t := range slices.Sorted(maps.Keys(failed)) {
		errs = append(errs, fmt.Errorf("replica: hints for %s kept: %w", t, failed[t]))
	}
	return delivered, errors.Join(errs...)
}

// dropHint deletes a delivered hint unless a newer write replaced it
// meanwhile.
func (n *Node) dropHint(target, key string, sent Record) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	cur, ok, err := n.cfg.Hints.Get(hintKey(target, key))
	if err != nil || !ok || !cur.equal(sent) {
		return err
	}
	return n.cfg.Hints.Delete(hintKey(target, key))
}
