package consensus

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// KV is one key's state in the replicated store.
type KV struct {
	Key   string `json:"key"`
	Value []byte `json:"value"`
	// Revision is the Raft log index of the key's last change. It only
	// grows, for a key and across keys, and doubles as a fencing token.
	Revision uint64 `json:"revision"`
	// CreateRevision is the log index that created the key.
	CreateRevision uint64 `json:"create_revision"`
	// Version counts the key's changes since its creation (1 after Create).
	Version uint64 `json:"version"`
	// Lease is the lease the key is attached to ([Node.GrantLease],
	// [WithLease]), zero for none: the key is deleted when the lease
	// expires or is revoked.
	Lease LeaseID `json:"lease,omitempty"`
}

type opCode byte

const (
	opPut opCode = iota + 1
	opCreate
	opCAS
	opDelete
	opLockAcquire
	opLockRenew
	opLockRelease
	opPutFenced
	opSetAPIAddr
	opNoop // a leader's first entry of its term, for linearizable reads
	opCompact
	opLeaseGrant
	opLeaseKeepAlive
	opLeaseRevoke
	opLeaseExpire // the leader's sweep: revoke the listed leases that expired by now
	opLeaseExtend // a new leader's first lease entry: every lease lives TTL from now
	opClusterID   // names the cluster, unless it has a name
	opLast        = opClusterID
)

// command is one replicated operation, encoded compactly into the log.
type command struct {
	op    opCode
	key   string
	value []byte
	old   []byte // CompareAndSwap: expected value
	owner string // locks
	lock  string // PutFenced: the lock name
	token uint64 // locks: fencing token
	ttl   int64  // locks and leases: nanoseconds
	now   int64  // locks and leases: leader's clock, unix nanoseconds
	lease uint64 // the lease a write attaches its key to, or the lease operated on
	ids   []LeaseID
}

func (c *command) encode() []byte {
	// Room for the value and, for most commands, everything else: a
	// command with a long key or a CAS's old value grows it once.
	b := make([]byte, 0, len(c.value)+64)
	b = append(b, byte(c.op))
	b = appendString(b, c.key)
	b = appendString(b, string(c.value))
	b = appendString(b, string(c.old))
	b = appendString(b, c.owner)
	b = appendString(b, c.lock)
	b = binary.AppendUvarint(b, c.token)
	b = binary.AppendVarint(b, c.ttl)
	b = binary.AppendVarint(b, c.now)
	if c.lease == 0 && len(c.ids) == 0 {
		return b // the format of entries written before leases existed
	}
	b = binary.AppendUvarint(b, c.lease)
	b = binary.AppendUvarint(b, uint64(len(c.ids)))
	for _, id := range c.ids {
		b = binary.AppendUvarint(b, uint64(id))
	}
	return b
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// decodeCommand parses a log entry. The returned byte slices are copies:
// the log's buffer may be reused.
func decodeCommand(b []byte) (command, error) {
	var c command
	if len(b) == 0 {
		return c, fmt.Errorf("%w: empty command", ErrInvalidArgument)
	}
	c.op = opCode(b[0])
	r := reader{b: b[1:]}
	c.key = string(r.bytes())
	if v := r.bytes(); v != nil {
		c.value = append([]byte{}, v...)
	}
	if v := r.bytes(); v != nil {
		c.old = append([]byte{}, v...)
	}
	c.owner = string(r.bytes())
	c.lock = string(r.bytes())
	c.token = r.uvarint()
	c.ttl = r.varint()
	c.now = r.varint()
	if len(r.b) > 0 {
		c.lease = r.uvarint()
		k := r.uvarint()
		if k > uint64(len(r.b)) {
			r.err = true
		}
		for i := uint64(0); i < k && !r.err; i++ {
			c.ids = append(c.ids, LeaseID(r.uvarint()))
		}
	}
	if r.err || len(r.b) > 0 || c.op < opPut || c.op > opLast {
		return c, fmt.Errorf("%w: malformed command (op %d, %d bytes)", ErrInvalidArgument, c.op, len(b))
	}
	return c, nil
}

type reader struct {
	b   []byte
	err bool
}

func (r *reader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = true
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) varint() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.err = true
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) bytes() []byte {
	n := r.uvarint()
	// (n >= len(r.b) would reject no whole entry: a string is never an
	// entry's last field.)
	if r.err || n > uint64(len(r.b)) {
		r.err = true
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	if n == 0 {
		return []byte{}
	}
	return v
}

// lockState is one held lock.
type lockState struct {
	Owner   string `json:"owner"`
	Token   uint64 `json:"token"`
	Expires int64  `json:"expires"` // unix nanoseconds, leader's clock
}

// applyResult is what fsm.Apply returns to the writer through the future.
type applyResult struct {
	kv    KV
	lease Lease
	grant LeaseInfo
	err   error
}

// fsm is the replicated key-value state machine. Raft calls Apply, Snapshot
// and Restore from one goroutine; readers call get/list concurrently.
type fsm struct {
	mu      sync.RWMutex
	kv      map[string]*KV       // guarded by mu
	locks   map[string]lockState // guarded by mu
	api     map[string]string    // guarded by mu: node id → API address
	applied uint64               // guarded by mu: last applied log index
	waitCh  chan struct{}        // guarded by mu: closed and replaced when applied grows

	clusterID string                  // guarded by mu: "" until the first backup names the cluster
	leases    map[LeaseID]*leaseState // guarded by mu
	history   []Event                 // guarded by mu: every change at a revision ≥ firstRev, in order
	firstRev  uint64                  // guarded by mu: the oldest revision a watch may start from
	// maxHistory bounds history; older revisions are compacted. Set
	// before the first Apply.
	maxHistory int
}

func newFSM() *fsm {
	return &fsm{kv: map[string]*KV{}, locks: map[string]lockState{}, api: map[string]string{}, waitCh: make(chan struct{}),
		leases: map[LeaseID]*leaseState{}, firstRev: 1, maxHistory: DefaultWatchHistory}
}

// leaseState is one granted lease.
type leaseState struct {
	TTL     int64               `json:"ttl"`     // nanoseconds
	Expires int64               `json:"expires"` // unix nanoseconds, leader's clock
	Keys    map[string]struct{} `json:"keys"`    // the keys attached to it
}

func (l *leaseState) info(id LeaseID) LeaseInfo {
	return LeaseInfo{ID: id, TTL: time.Duration(l.TTL), Expires: time.Unix(0, l.Expires)}
}

var (
	_ raft.FSM                = (*fsm)(nil)
	_ raft.ConfigurationStore = (*fsm)(nil)
)

// Apply implements raft.FSM.
func (f *fsm) Apply(l *raft.Log) any {
	c, err := decodeCommand(l.Data)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.advance(l.Index)
	if err != nil {
		return applyResult{err: err}
	}
	return f.apply(l.Index, &c)
}

// StoreConfiguration implements raft.ConfigurationStore, so that the
// applied index also counts configuration entries: linearizable reads wait
// for it to reach the commit index.
func (f *fsm) StoreConfiguration(index uint64, _ raft.Configuration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.advance(index)
}

// advance records index as applied and wakes waiters; requires f.mu held.
func (f *fsm) advance(index uint64) {
	f.applied = index
	close(f.waitCh)
	f.waitCh = make(chan struct{})
}

// apply runs one command; requires f.mu held.
func (f *fsm) apply(index uint64, c *command) applyResult {
	cur := f.kv[c.key]
	switch c.op {
	case opPut, opCreate, opCAS:
		if c.lease != 0 && f.leases[LeaseID(c.lease)] == nil {
			return applyResult{err: fmt.Errorf("%w: lease %d for key %q", ErrLeaseNotFound, c.lease, c.key)}
		}
	}
	switch c.op {
	case opPut:
		return applyResult{kv: f.set(index, c.key, c.value, LeaseID(c.lease))}
	case opCreate:
		if cur != nil {
			return applyResult{kv: *cur, err: fmt.Errorf("%w: %q (revision %d)", ErrKeyExists, c.key, cur.Revision)}
		}
		return applyResult{kv: f.set(index, c.key, c.value, LeaseID(c.lease))}
	case opCAS:
		if cur == nil {
			return applyResult{err: fmt.Errorf("%w: compare-and-swap on missing key %q", ErrKeyNotFound, c.key)}
		}
		if string(cur.Value) != string(c.old) {
			return applyResult{kv: *cur, err: &CompareFailedError{Current: *cur}}
		}
		return applyResult{kv: f.set(index, c.key, c.value, LeaseID(c.lease))}
	case opDelete:
		if cur == nil {
			return applyResult{err: fmt.Errorf("%w: %q", ErrKeyNotFound, c.key)}
		}
		return applyResult{kv: f.del(index, c.key)}
	case opLockAcquire:
		held, ok := f.locks[c.key]
		if ok && held.Owner != c.owner && c.now < held.Expires {
			return applyResult{lease: held.lease(c.key), err: fmt.Errorf("%w: lock %q held by %q (token %d)", ErrLockHeld, c.key, held.Owner, held.Token)}
		}
		st := lockState{Owner: c.owner, Token: index, Expires: c.now + c.ttl}
		f.locks[c.key] = st
		return applyResult{lease: st.lease(c.key)}
	case opLockRenew:
		held, ok := f.locks[c.key]
		if !ok || held.Owner != c.owner || held.Token != c.token || c.now >= held.Expires {
			return applyResult{err: fmt.Errorf("%w: lock %q, owner %q, token %d", ErrLeaseLost, c.key, c.owner, c.token)}
		}
		held.Expires = c.now + c.ttl
		f.locks[c.key] = held
		return applyResult{lease: held.lease(c.key)}
	case opLockRelease:
		held, ok := f.locks[c.key]
		if !ok || held.Owner != c.owner || held.Token != c.token {
			return applyResult{err: fmt.Errorf("%w: lock %q, owner %q, token %d", ErrLeaseLost, c.key, c.owner, c.token)}
		}
		delete(f.locks, c.key)
		return applyResult{lease: held.lease(c.key)}
	case opPutFenced:
		held, ok := f.locks[c.lock]
		if !ok || held.Owner != c.owner || held.Token != c.token || c.now >= held.Expires {
			return applyResult{err: fmt.Errorf("%w: write to %q fenced by lock %q, token %d", ErrLeaseLost, c.key, c.lock, c.token)}
		}
		return applyResult{kv: f.set(index, c.key, c.value, 0)}
	case opSetAPIAddr:
		f.api[c.key] = string(c.value)
		return applyResult{}
	case opNoop:
		return applyResult{}
	case opClusterID:
		if f.clusterID == "" {
			f.clusterID = string(c.value)
		}
		return applyResult{}
	case opCompact:
		return f.applyCompact(c.token)
	case opLeaseGrant, opLeaseKeepAlive, opLeaseRevoke, opLeaseExpire, opLeaseExtend:
		return f.applyLease(index, c)
	}
	return applyResult{err: fmt.Errorf("%w: unknown op %d", ErrInvalidArgument, c.op)}
}

// set stores value under key at revision index, attached to lease (0 for
// none); requires f.mu held.
func (f *fsm) set(index uint64, key string, value []byte, lease LeaseID) KV {
	next := KV{Key: key, Value: value, Revision: index, CreateRevision: index, Version: 1, Lease: lease}
	if e := f.kv[key]; e != nil {
		next.CreateRevision, next.Version = e.CreateRevision, e.Version+1
		f.detach(e)
	}
	if l := f.leases[lease]; l != nil {
		l.Keys[key] = struct{}{}
	}
	// Replace rather than mutate: a snapshot may share the previous entry.
	f.kv[key] = &next
	f.record(Event{Type: EventPut, KV: next})
	return next
}

// del removes key at revision index and returns its last state; requires
// f.mu held and the key present.
func (f *fsm) del(index uint64, key string) KV {
	prev := *f.kv[key]
	f.detach(&prev)
	delete(f.kv, key)
	f.record(Event{Type: EventDelete, KV: KV{Key: key, Revision: index}})
	return prev
}

// detach removes e's key from its lease; requires f.mu held.
func (f *fsm) detach(e *KV) {
	if l := f.leases[e.Lease]; l != nil {
		delete(l.Keys, e.Key)
	}
}

func (l lockState) lease(name string) Lease {
	return Lease{Name: name, Owner: l.Owner, Token: l.Token, expires: l.Expires}
}

func (f *fsm) get(key string) (KV, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	e, ok := f.kv[key]
	if !ok {
		return KV{}, false
	}
	return *e, true
}

func (f *fsm) list(prefix string) []KV {
	out, _ := f.listAt(prefix)
	return out
}

// listAt returns the keys with prefix and the applied index they reflect.
func (f *fsm) listAt(prefix string) ([]KV, uint64) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	var out []KV
	for k, e := range f.kv {
		if strings.HasPrefix(k, prefix) {
			out = append(out, *e)
		}
	}
	return out, f.applied
}

// apiAddrs returns a copy of every node's API address.
func (f *fsm) apiAddrs() map[string]string {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return maps.Clone(f.api)
}

func (f *fsm) apiAddr(id string) string {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.api[id]
}

func (f *fsm) lockInfo(name string) (lockState, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	l, ok := f.locks[name]
	return l, ok
}

// appliedIndex returns the last applied index and a channel closed when it
// next grows.
func (f *fsm) appliedIndex() (uint64, <-chan struct{}) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.applied, f.waitCh
}

func (f *fsm) size() int {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return len(f.kv)
}

// snapshotData is the serialized form of the state machine.
type snapshotData struct {
	KV    map[string]*KV       `json:"kv"`
	Locks map[string]lockState `json:"locks"`
	API   map[string]string    `json:"api"`
	// Applied is the last log index the snapshot includes.
	Applied uint64 `json:"applied"`
	// Leases, History and FirstRev are absent from snapshots taken before
	// leases and watches existed: no leases, and watches start after
	// Applied.
	Leases   map[LeaseID]*leaseState `json:"leases,omitempty"`
	History  []Event                 `json:"history,omitempty"`
	FirstRev uint64                  `json:"first_rev,omitempty"`
	// ClusterID is absent until a backup names the cluster.
	ClusterID string `json:"cluster_id,omitempty"`
}

// Snapshot implements raft.FSM: it copies the maps (values are never
// mutated in place, so sharing them is safe; leases are, so they are
// copied) and serializes outside the lock.
func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	return &fsmSnapshot{d: f.state()}, nil
}

// state returns a copy of the state machine's state, as of one applied
// index.
func (f *fsm) state() snapshotData {
	f.mu.RLock()
	defer f.mu.RUnlock()
	d := snapshotData{Applied: f.applied, ClusterID: f.clusterID, KV: make(map[string]*KV, len(f.kv)), Locks: make(map[string]lockState, len(f.locks)), API: make(map[string]string, len(f.api)),
		Leases: make(map[LeaseID]*leaseState, len(f.leases)), History: slices.Clone(f.history), FirstRev: f.firstRev}
	for k, v := range f.kv {
		d.KV[k] = v
	}
	for k, v := range f.locks {
		d.Locks[k] = v
	}
	for k, v := range f.api {
		d.API[k] = v
	}
	for id, l := range f.leases {
		c := *l
		c.Keys = maps.Clone(l.Keys)
		d.Leases[id] = &c
	}
	return d
}

// Restore implements raft.FSM, for Raft's snapshots and for backups
// ([Node.Restore] gives a backup the cluster's API addresses).
func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	var d snapshotData
	if err := json.NewDecoder(rc).Decode(&d); err != nil {
		return fmt.Errorf("consensus: restore snapshot: %w", err)
	}
	if d.KV == nil {
		d.KV = map[string]*KV{}
	}
	if d.Locks == nil {
		d.Locks = map[string]lockState{}
	}
	if d.API == nil {
		d.API = map[string]string{}
	}
	if d.Leases == nil {
		d.Leases = map[LeaseID]*leaseState{}
	}
	for _, l := range d.Leases {
		if l.Keys == nil {
			l.Keys = map[string]struct{}{}
		}
	}
	if d.FirstRev == 0 {
		d.FirstRev = d.Applied + 1
	}
	f.mu.Lock()
	f.api, f.kv, f.locks, f.leases, f.clusterID = d.API, d.KV, d.Locks, d.Leases, d.ClusterID
	f.history, f.firstRev = d.History, d.FirstRev
	f.advance(d.Applied)
	f.mu.Unlock()
	return nil
}

type fsmSnapshot struct{ d snapshotData }

func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	if err := json.NewEncoder(sink).Encode(&s.d); err != nil {
		_ = sink.Cancel()
		return fmt.Errorf("consensus: persist snapshot: %w", err)
	}
	return sink.Close()
}

func (s *fsmSnapshot) Release() {}
