package replica

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"
)

// Config configures [NewCoordinator].
type Config struct {
	// Placement gives each key's preference list. Required.
	Placement Placement
	// Transport reaches the nodes. Required.
	Transport Transport
	// N is the number of replicas of a key when a request does not say;
	// zero means 3.
	N int
	// Timeout bounds each request (its context's deadline may end it
	// sooner) and the replication and read repair that go on after a
	// request returns; zero means one second.
	Timeout time.Duration
	// MaxValueSize bounds a value; zero means [DefaultMaxValueSize].
	MaxValueSize int
	// LastWriterWins resolves concurrent writes by wall-clock time instead
	// of keeping them as siblings: what Cassandra does, and what loses one
	// of two concurrent updates.
	LastWriterWins bool
	// SloppyQuorum sends a write meant for an unreachable replica to the
	// next node of the ring instead, with a hint naming the replica, and
	// counts it towards W (Dynamo's sloppy quorum); [Node.HandOff] hands
	// it back. Without it, an unreachable replica only costs an
	// acknowledgement.
	SloppyQuorum bool
	// DisableReadRepair turns off read repair: a read no longer writes the
	// merged record back to the replicas that answered with less.
	DisableReadRepair bool
	// SessionKey signs session tokens (HMAC-SHA-256). Coordinators that
	// should accept each other's tokens share it. Nil means a random key
	// of this coordinator's own.
	SessionKey []byte
	// SessionTTL is how long a session token stays valid; zero means one
	// hour.
	SessionTTL time.Duration
	// Now is the clock of last-writer-wins timestamps and session tokens;
	// nil means time.Now.
	Now func() time.Time
}

// Coordinator runs reads and writes over the replicas of each key, with N,
// R and W per request: a client-side coordinator, as a Cassandra or Riak
// client library talks to any node. A write is given its version by the
// first reachable replica and sent to all N, and returns after W
// acknowledgements; a read asks all N and returns after R answers. What is
// still in flight when a request returns — replication to the other
// replicas, read repair — runs in goroutines the coordinator owns, bounded
// by Config.Timeout, and [Coordinator.Close] waits for them.
//
// A Coordinator is safe for concurrent use.
type Coordinator struct {
	cfg    Config
	nodes  []string
	base   context.Context
	cancel context.CancelFunc

	mu     sync.Mutex     // guards closed and wg.Add
	closed bool           // Close was called
	wg     sync.WaitGroup // background calls
	done   chan struct{}  // closed when wg is done after Close
	once   sync.Once
}

// NewCoordinator validates cfg and returns a coordinator. Errors wrap
// [ErrInvalidArgument].
func NewCoordinator(cfg Config) (*Coordinator, error) {
	if cfg.Placement == nil || cfg.Transport == nil {
		return nil, fmt.Errorf("%w: a coordinator needs a Placement and a Transport", ErrInvalidArgument)
	}
	var err error
	if cfg.N, err = defaultPositive("N", cfg.N, 3); err != nil {
		return nil, err
	}
	if cfg.MaxValueSize, err = defaultPositive("MaxValueSize", cfg.MaxValueSize, DefaultMaxValueSize); err != nil {
		return nil, err
	}
	nodes := cfg.Placement.Nodes()
	if cfg.N > len(nodes) {
		return nil, fmt.Errorf("%w: N = %d replicas on %d nodes", ErrInvalidLevel, cfg.N, len(nodes))
	}
	if cfg.Timeout < 0 || cfg.SessionTTL < 0 {
		return nil, fmt.Errorf("%w: Timeout %v, SessionTTL %v (want ≥ 0)", ErrInvalidArgument, cfg.Timeout, cfg.SessionTTL)
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = time.Second
	}
	if cfg.SessionTTL == 0 {
		cfg.SessionTTL = time.Hour
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.SessionKey, err = sessionKey(cfg.SessionKey); err != nil {
		return nil, err
	}
	c := &Coordinator{cfg: cfg, done: make(chan struct{})}
	for _, n := range nodes {
		c.nodes = append(c.nodes, n.Name)
	}
	c.base, c.cancel = context.WithCancel(context.Background())
	return c, nil
}

// Context is the causal context of a key as a read returned it: the
// versions the reader has seen. A write that carries it supersedes every
// sibling the read returned. The zero Context is a blind write's, which
// supersedes nothing. It marshals to text, so a client can carry it through
// an HTTP header or a form field.
type Context struct {
	key   string
	clock VersionVector
}

// Key returns the key the context was read from.
func (c Context) Key() string { return c.key }

// contextWire is the encoding of a Context.
type contextWire struct {
	Key   string        `json:"k"`
	Clock VersionVector `json:"c"`
}

// MarshalText encodes the context as unpadded base64url of its JSON.
func (c Context) MarshalText() ([]byte, error) {
	b, err := json.Marshal(contextWire{c.key, c.clock})
	if err != nil {
		return nil, err
	}
	return base64.RawURLEncoding.AppendEncode(nil, b), nil
}

// UnmarshalText decodes a context that MarshalText encoded; anything else
// is an error wrapping [ErrInvalidContext].
func (c *Context) UnmarshalText(text []byte) error {
	b, err := base64.RawURLEncoding.AppendDecode(nil, text)
	var w contextWire
	if err == nil {
		err = json.Unmarshal(b, &w)
	}
	if err == nil {
		for n, v := range w.Clock {
			if n == "" || v == 0 {
				err = fmt.Errorf("entry %q: %d", n, v)
			}
		}
	}
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidContext, err)
	}
	*c = Context{w.Key, w.Clock}
	return nil
}

// Result is what a read returns — one value, or several siblings written
// concurrently, and the causal context that a write resolving them
// carries — or what a write returns: the same of the record the write's
// coordinating replica stored, the new value and any siblings it kept
// beside it (as Riak's return_body).
type Result struct {
	// Values are the siblings' values; more than one when writes were
	// concurrent (never in last-writer-wins mode).
	Values [][]byte
	// Context is the key's causal context, for the next write.
	Context Context

	dot  Dot           // a write's own version
	past VersionVector // the causal context a write was made with
}

// call is one node's answer to a request sent in parallel.
type call struct {
	node string
	resp *Response
	err  error
}

// request checks the parts every request shares and returns its N, R, W,
// its preference list and its deadline.
func (c *Coordinator) request(ctx context.Context, key string, opts Options) (n, r, w int, prefs []string, deadline time.Time, err error) {
	if key == "" {
		return 0, 0, 0, nil, deadline, fmt.Errorf("%w: empty key", ErrInvalidArgument)
	}
	if n, r, w, err = opts.quorum(c.cfg.N, len(c.nodes)); err != nil {
		return 0, 0, 0, nil, deadline, err
	}
	if err = ctx.Err(); err != nil {
		return 0, 0, 0, nil, deadline, err
	}
	deadline = time.Now().Add(c.cfg.Timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	for _, i := range c.cfg.Placement.AppendN(nil, key, n) {
		prefs = append(prefs, c.nodes[i])
	}
	return n, r, w, prefs, deadline, nil
}

// goBackground runs f in a goroutine the coordinator owns, or reports
// false after Close.
func (c *Coordinator) goBackground(f func()) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		f()
	}()
	return true
}

// send calls node with req in a background goroutine bounded by deadline
// and delivers the checked answer on out.
func (c *Coordinator) send(deadline time.Time, node string, req *Request, out chan<- call) bool {
	return c.goBackground(func() {
		ctx, cancel := context.WithDeadline(c.base, deadline)
		defer cancel()
		resp, err := c.cfg.Transport.Call(ctx, node, req)
		if err == nil {
			err = c.check(req, resp)
		}
		out <- call{node, resp, err}
	})
}

// check validates a reply: a node whose reply is malformed counts as
// failed.
func (c *Coordinator) check(req *Request, resp *Response) error {
	switch {
	case resp == nil:
		return fmt.Errorf("%w: no response", ErrBadReply)
	case resp.Key != req.Key:
		return fmt.Errorf("%w: %s of %q answered for %q", ErrBadReply, req.Op, req.Key, resp.Key)
	case resp.Record == nil:
		return fmt.Errorf("%w: %s of %q answered without a record", ErrBadReply, req.Op, req.Key)
	}
	if err := resp.Record.validate(c.cfg.MaxValueSize); err != nil {
		return err
	}
	if req.Op != OpGet && !resp.Record.Clock.Covers(req.Context) {
		return fmt.Errorf("%w: %s of %q answered with a record older than the write", ErrBadReply, req.Op, req.Key)
	}
	return nil
}

// Put writes value to key, superseding the siblings that cc (the context a
// read of key returned) covers; a zero cc is a blind write, kept beside
// whatever it was concurrent with. It returns once W replicas have stored
// the write, with the record the coordinating replica stored: the new value
// and the siblings it was concurrent with, and their context. A Put that fails with
// [ErrUnavailable] may still be stored on the replicas that answered.
//
// Errors: [ErrInvalidArgument] (and a narrower sentinel) for an empty key,
// an oversized value, a context of another key, a bad level;
// [ErrUnavailable] when fewer than W replicas acknowledged in time;
// [ErrClosed] after Close.
func (c *Coordinator) Put(ctx context.Context, key string, value []byte, cc Context, opts Options) (*Result, error) {
	n, _, w, prefs, deadline, err := c.request(ctx, key, opts)
	if err != nil {
		return nil, err
	}
	if len(value) > c.cfg.MaxValueSize {
		return nil, fmt.Errorf("%w: %d bytes for key %q (at most %d)", ErrValueTooLarge, len(value), key, c.cfg.MaxValueSize)
	}
	if cc.clock != nil && cc.key != key {
		return nil, fmt.Errorf("%w: context of key %q given to a write of %q", ErrInvalidContext, cc.key, key)
	}
	past := cc.clock
	if opts.Session != nil {
		// Monotonic writes and writes-follow-reads: the write comes after
		// everything the session wrote or read of the key.
		past = past.Join(opts.Session.vector(key))
	}
	req := &Request{Op: OpCoordinate, Key: key, Value: bytes.Clone(value), Context: past, LWW: c.cfg.LastWriterWins}
	if c.cfg.LastWriterWins {
		req.Time = c.cfg.Now().UnixNano()
	}

	// The first reachable replica coordinates the write: it gives it a
	// dot. Each candidate gets an equal share of what is left of the
	// deadline, so one silent replica cannot use it all.
	var rec Record
	coord := -1
	var errs []error
	for i, p := range prefs {
		share := time.Until(deadline) / time.Duration(len(prefs)-i)
		out := make(chan call, 1)
		if !c.send(time.Now().Add(share), p, req, out) {
			return nil, ErrClosed
		}
		res := <-out
		if res.err == nil {
			rec, coord = *res.resp.Record, i
			break
		}
		errs = append(errs, fmt.Errorf("%s: %w", p, res.err))
	}
	if coord < 0 {
		return nil, fmt.Errorf("%w: no replica of %q took the write (N = %d, W = %d): %w", ErrUnavailable, key, n, w, errors.Join(errs...))
	}
	if opts.Session != nil {
		opts.Session.observe(key, rec.Clock)
	}
	dot := Dot{prefs[coord], rec.Clock[prefs[coord]]}
	result := &Result{Values: rec.values(), Context: Context{key, rec.Clock}, dot: dot, past: past}

	// Replicate the coordinated record to the other replicas.
	acks := 1
	others := slices.Concat(prefs[:coord], prefs[coord+1:])
	out := make(chan call, len(others))
	rep := &Request{Op: OpReplicate, Key: key, Record: &rec, Context: rec.Clock}
	fallbacks := c.fallbacks(key, n)
	for _, p := range others {
		p := p
		if !c.goBackground(func() { out <- c.replicate(deadline, p, rep, fallbacks) }) {
			return nil, ErrClosed
		}
	}
	for range others {
		if acks >= w {
			return result, nil
		}
		select {
		case res := <-out:
			if res.err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", res.node, res.err))
				continue
			}
			acks++
		case <-ctx.Done():
			return nil, fmt.Errorf("%w: %d of W = %d replicas acknowledged the write of %q: %w", ErrUnavailable, acks, w, key, ctx.Err())
		}
	}
	if acks >= w {
		return result, nil
	}
	return nil, fmt.Errorf("%w: %d of W = %d replicas acknowledged the write of %q: %w", ErrUnavailable, acks, w, key, errors.Join(errs...))
}

// fallbacks returns the nodes after the first n of key's preference list,
// in order, which a sloppy quorum hands writes to: nil without one.
type fallbackList struct {
	mu    sync.Mutex
	nodes []string
}

func (c *Coordinator) fallbacks(key string, n int) *fallbackList {
	if !c.cfg.SloppyQuorum {
		return nil
	}
	f := &fallbackList{}
	for _, i := range c.cfg.Placement.AppendN(nil, key, len(c.nodes))[n:] {
		f.nodes = append(f.nodes, c.nodes[i])
	}
	return f
}

// take returns the next fallback node, or "" when none is left.
func (f *fallbackList) take() string {
	if f == nil {
		return ""
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.nodes) == 0 {
		return ""
	}
	n := f.nodes[0]
	f.nodes = f.nodes[1:]
	return n
}

// replicate sends rep to node and, if that fails under a sloppy quorum, to
// the next fallback nodes with a hint naming node, until one stores it.
func (c *Coordinator) replicate(deadline time.Time, node string, rep *Request, fb *fallbackList) call {
	ctx, cancel := context.WithDeadline(c.base, deadline)
	defer cancel()
	share := func() (context.Context, context.CancelFunc) {
		if fb == nil {
			return ctx, func() {}
		}
		// Leave time for a fallback after a silent replica.
		return context.WithTimeout(ctx, time.Until(deadline)/2)
	}
	cctx, ccancel := share()
	resp, err := c.cfg.Transport.Call(cctx, node, rep)
	ccancel()
	if err == nil {
		err = c.check(rep, resp)
	}
	if err == nil {
		return call{node: node}
	}
	first := err
	for f := fb.take(); f != ""; f = fb.take() {
		hinted := *rep
		hinted.Hint = node
		cctx, ccancel := share()
		resp, err := c.cfg.Transport.Call(cctx, f, &hinted)
		ccancel()
		if err == nil {
			err = c.check(&hinted, resp)
		}
		if err == nil {
			return call{node: f}
		}
	}
	return call{node: node, err: first}
}

// Get reads key from its N replicas and returns, once R have answered, the
// merge of their records: one value, or siblings, and the causal context.
// With a session, it waits for more replicas (up to N) until one is as
// recent as the session, and fails with [ErrSessionUnavailable] if none is.
// The replicas that answered with less than the merge are repaired in the
// background unless Config.DisableReadRepair is set.
//
// Errors: [ErrNotFound] when the replicas read hold no value; see Put for
// the others.
func (c *Coordinator) Get(ctx context.Context, key string, opts Options) (*Result, error) {
	n, r, w, prefs, deadline, err := c.request(ctx, key, opts)
	if err != nil {
		return nil, err
	}
	var need VersionVector
	if opts.Session != nil {
		need = opts.Session.vector(key)
	}
	req := &Request{Op: OpGet, Key: key}
	out := make(chan call, n)
	for _, p := range prefs {
		if !c.send(deadline, p, req, out) {
			return nil, ErrClosed
		}
	}
	var (
		merged  Record
		answers []call
		errs    []error
		pending = n
	)
	for pending > 0 && (len(answers) < r || !merged.Clock.Covers(need)) {
		select {
		case res := <-out:
			pending--
			if res.err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", res.node, res.err))
				continue
			}
			answers = append(answers, res)
			merged = merge(merged, *res.resp.Record)
		case <-ctx.Done():
			errs = append(errs, ctx.Err())
			pending = 0
		}
	}
	defer c.repair(key, merged, answers, out, pending, deadline)
	if len(answers) < r {
		return nil, fmt.Errorf("%w: %d of R = %d replicas of %q answered: %w", ErrUnavailable, len(answers), r, key, errors.Join(errs...))
	}
	if !merged.Clock.Covers(need) {
		return nil, fmt.Errorf("%w: %d replicas of %q answered, none as recent as the session", ErrSessionUnavailable, len(answers), key)
	}
	if opts.WriteBack {
		if err := c.writeBack(ctx, key, merged, answers, w, deadline); err != nil {
			return nil, err
		}
	}
	if opts.Session != nil {
		opts.Session.observe(key, merged.Clock)
	}
	if len(merged.Siblings) == 0 {
		return nil, fmt.Errorf("%w: %q (%d replicas read)", ErrNotFound, key, len(answers))
	}
	return &Result{Values: merged.values(), Context: Context{key, merged.Clock}}, nil
}

// writeBack stores merged on W replicas before a read answers (ABD): those
// that already answered with it count, the others are sent it.
func (c *Coordinator) writeBack(ctx context.Context, key string, merged Record, answers []call, w int, deadline time.Time) error {
	acks := 0
	var stale []string
	for _, a := range answers {
		if a.resp.Record.equal(merged) {
			acks++
		} else {
			stale = append(stale, a.node)
		}
	}
	if acks >= w || len(merged.Siblings) == 0 {
		return nil
	}
	rep := &Request{Op: OpReplicate, Key: key, Record: &merged, Context: merged.Clock}
	out := make(chan call, len(stale))
	for _, p := range stale {
		if !c.send(deadline, p, rep, out) {
			return ErrClosed
		}
	}
	for range stale {
		select {
		case res := <-out:
			if res.err == nil {
				acks++
			}
		case <-ctx.Done():
			return fmt.Errorf("%w: write-back of %q: %w", ErrUnavailable, key, ctx.Err())
		}
		if acks >= w {
			return nil
		}
	}
	return fmt.Errorf("%w: write-back of %q reached %d of W = %d replicas", ErrUnavailable, key, acks, w)
}

// repair waits, in the background, for the replicas that had not answered
// when the read returned, and sends the merge of every answer to the
// replicas that answered with less (read repair).
func (c *Coordinator) repair(key string, merged Record, answers []call, out <-chan call, pending int, deadline time.Time) {
	if c.cfg.DisableReadRepair {
		return
	}
	answers = append([]call(nil), answers...)
	c.goBackground(func() {
		for ; pending > 0; pending-- {
			if res := <-out; res.err == nil {
				answers = append(answers, res)
				merged = merge(merged, *res.resp.Record)
			}
		}
		if len(merged.Siblings) == 0 {
			return
		}
		rep := &Request{Op: OpReplicate, Key: key, Record: &merged, Context: merged.Clock}
		ctx, cancel := context.WithTimeout(c.base, c.cfg.Timeout)
		defer cancel()
		for _, a := range answers {
			if !a.resp.Record.equal(merged) {
				_, _ = c.cfg.Transport.Call(ctx, a.node, rep)
			}
		}
	})
}

// Close stops the coordinator taking requests and waits for the
// replication and read repair still in flight, until they end or ctx is
// done; then it cancels them and returns an error wrapping ctx.Err().
// Calling it again waits, under the new ctx, for the same shutdown.
func (c *Coordinator) Close(ctx context.Context) error {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	c.once.Do(func() {
		go func() {
			c.wg.Wait()
			c.cancel()
			close(c.done)
		}()
	})
	select {
	case <-c.done:
		return nil
	case <-ctx.Done():
		c.cancel()
		<-c.done
		return fmt.Errorf("replica: close cancelled the replication and read repair in flight: %w", ctx.Err())
	}
}
