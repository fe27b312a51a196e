package replica

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// Op is the kind of a [Request].
type Op uint8

// The requests a node serves.
const (
	// OpGet reads the record of Key.
	OpGet Op = iota + 1
	// OpCoordinate makes the node the coordinator of a write of Value to
	// Key with causal context Context: it gives the write a dot of its own,
	// stores it and replies with the record to replicate.
	OpCoordinate
	// OpReplicate merges Record into the node's record of Key, or, when
	// Hint names another node, keeps it as a hint for that node (sloppy
	// quorum).
	OpReplicate
	// OpTree returns the Merkle tree hashes at Level, Indices of the keys
	// the node shares with Peer (anti-entropy).
	OpTree
	// OpBucket returns the keys and record digests in the Merkle leaves
	// Indices of the keys the node shares with Peer (anti-entropy).
	OpBucket
)

// String returns the op's name.
func (o Op) String() string {
	switch o {
	case OpGet:
		return "get"
	case OpCoordinate:
		return "coordinate"
	case OpReplicate:
		return "replicate"
	case OpTree:
		return "tree"
	case OpBucket:
		return "bucket"
	}
	return fmt.Sprintf("Op(%d)", uint8(o))
}

// Request is one call from a coordinator or a node to a node.
type Request struct {
	Op      Op            `json:"op"`
	Key     string        `json:"key,omitempty"`
	Value   []byte        `json:"value,omitempty"`
	Context VersionVector `json:"context,omitempty"`
	Time    int64         `json:"time,omitempty"`
	LWW     bool          `json:"lww,omitempty"`
	Record  *Record       `json:"record,omitempty"`
	Hint    string        `json:"hint,omitempty"`
	Peer    string        `json:"peer,omitempty"`
	Level   int           `json:"level,omitempty"`
	Depth   int           `json:"depth,omitempty"`
	Indices []int         `json:"indices,omitempty"`
}

// Response is a node's reply to a [Request].
type Response struct {
	Key    string      `json:"key,omitempty"`
	Found  bool        `json:"found,omitempty"`
	Record *Record     `json:"record,omitempty"`
	Hashes []uint64    `json:"hashes,omitempty"`
	Keys   []KeyDigest `json:"keys,omitempty"`
}

// KeyDigest is a key and a hash of its record, as anti-entropy compares
// them.
type KeyDigest struct {
	Key    string `json:"key"`
	Digest uint64 `json:"digest"`
}

// Handler serves requests: a [*Node], or, in a test, a node that misbehaves.
type Handler interface {
	Handle(ctx context.Context, req *Request) (*Response, error)
}

// Transport carries a request to the node named to and returns its reply.
// Implementations: [Network] (in-process, with injected faults) and
// [HTTPTransport]. Records in requests and replies are never modified by
// either side, so an in-process transport may pass them without copying.
type Transport interface {
	Call(ctx context.Context, to string, req *Request) (*Response, error)
}

// Network is an in-process network of nodes for tests and the lab, with the
// faults a real one has, injected for real: partitions, one-way loss,
// delay, and crashed nodes. A lost request or reply is not an error: the
// caller waits until its context ends, as over a real network. The zero
// value is a network with no nodes and no faults, ready to use; it is safe
// for concurrent use.
type Network struct {
	mu       sync.Mutex         // guards the fields below
	handlers map[string]Handler // registered, not crashed
	cut      map[[2]string]bool // {from, to}: messages from → to are lost
	latency  func(from, to string) time.Duration
}

// Register makes h reachable under name, replacing any handler of that
// name: a node that starts, or restarts after [Network.Crash].
func (n *Network) Register(name string, h Handler) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.handlers == nil {
		n.handlers = make(map[string]Handler)
	}
	n.handlers[name] = h
}

// Crash makes the node named name unreachable until it is registered
// again: calls to it fail at once with [ErrNodeDown], as a refused
// connection does. What it kept in memory is up to the caller, who
// restarts it with the same or a new [Node].
func (n *Network) Crash(name string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.handlers, name)
}

// Cut loses every message from one endpoint to another (one-way loss); the
// other direction still works.
func (n *Network) Cut(from, to string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cut == nil {
		n.cut = make(map[[2]string]bool)
	}
	n.cut[[2]string{from, to}] = true
}

// Partition cuts every endpoint of a from every endpoint of b, both ways.
func (n *Network) Partition(a, b []string) {
	for _, x := range a {
		for _, y := range b {
			n.Cut(x, y)
			n.Cut(y, x)
		}
	}
}

// Heal removes every cut and partition.
func (n *Network) Heal() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.cut = nil
}

// SetLatency sets the one-way delay of each message from one endpoint to
// another (a request from → to, a reply to → from); nil means none. f is
// called for every message and must be safe for concurrent use.
func (n *Network) SetLatency(f func(from, to string) time.Duration) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.latency = f
}

// Endpoint returns the transport of the endpoint named from: a node's, or
// a coordinator's, which faults name like a node's.
func (n *Network) Endpoint(from string) Transport { return endpoint{n, from} }

// endpoint is a Network seen from one of its endpoints.
type endpoint struct {
	n    *Network
	from string
}

// Call delivers req from e.from to the node named to, after the
// network's delay, and its reply back.
func (e endpoint) Call(ctx context.Context, to string, req *Request) (*Response, error) {
	if err := e.n.deliver(ctx, e.from, to); err != nil {
		return nil, err
	}
	e.n.mu.Lock()
	h := e.n.handlers[to]
	e.n.mu.Unlock()
	if h == nil {
		return nil, fmt.Errorf("%w: %s", ErrNodeDown, to)
	}
	resp, err := h.Handle(ctx, req)
	if derr := e.n.deliver(ctx, to, e.from); derr != nil {
		return nil, derr
	}
	return resp, err
}

// deliver waits for the delay of one message from → to, or, if that
// direction is cut, until ctx ends.
func (n *Network) deliver(ctx context.Context, from, to string) error {
	n.mu.Lock()
	lost := n.cut[[2]string{from, to}]
	lat := n.latency
	n.mu.Unlock()
	if lost {
		<-ctx.Done()
		return fmt.Errorf("replica: message %s → %s lost: %w", from, to, ctx.Err())
	}
	if lat == nil {
		return ctx.Err()
	}
	d := lat(from, to)
	if d <= 0 { // (or d < 0: a timer of zero fires at once)
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("replica: message %s → %s: %w", from, to, ctx.Err())
	}
}
