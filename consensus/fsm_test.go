package consensus

import (
	"bytes"
	"io"
	"testing"

	"github.com/hashicorp/raft"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Commands survive encoding, and no byte string makes the state machine
// panic or corrupt its state: a malformed entry is rejected and counted as
// applied (the log stays consistent across nodes).
func FuzzDecodeCommand(f *testing.F) {
	f.Add((&command{op: opPut, key: "k", value: []byte("v")}).encode())
	f.Add((&command{op: opLockAcquire, key: "l", owner: "o", ttl: 5, now: -3}).encode())
	f.Add((&command{op: opPutFenced, key: "k", lock: "l", owner: "o", token: 1 << 60}).encode())
	f.Add([]byte{})
	f.Add([]byte{byte(opCAS), 0xff, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := decodeCommand(data)
		if err == nil {
			again, err := decodeCommand(c.encode())
			require.NoError(t, err)
			assert.Equal(t, c, again)
		}
		fsm := newFSM()
		r := fsm.Apply(&raft.Log{Index: 7, Data: data}).(applyResult)
		if err != nil {
			assert.ErrorIs(t, r.err, ErrInvalidArgument)
			assert.Zero(t, fsm.size())
		}
		applied, _ := fsm.appliedIndex()
		assert.Equal(t, uint64(7), applied)
	})
}

type memSink struct {
	bytes.Buffer
	cancelled bool
}

func (s *memSink) ID() string    { return "mem" }
func (s *memSink) Cancel() error { s.cancelled = true; return nil }
func (s *memSink) Close() error  { return nil }

func TestFSM_SnapshotRestoreRoundTrip(t *testing.T) {
	f := newFSM()
	apply := func(i uint64, c command) applyResult {
		return f.Apply(&raft.Log{Index: i, Data: c.encode()}).(applyResult)
	}
	apply(1, command{op: opPut, key: "a", value: []byte("1")})
	apply(2, command{op: opPut, key: "a", value: []byte("2")})
	apply(3, command{op: opLockAcquire, key: "l", owner: "o", ttl: 100, now: 1})
	apply(4, command{op: opSetAPIAddr, key: "n1", value: []byte("127.0.0.1:1")})
	snap, err := f.Snapshot()
	require.NoError(t, err)
	apply(5, command{op: opPut, key: "b", value: []byte("after snapshot")}) // not in it
	var sink memSink
	require.NoError(t, snap.Persist(&sink))
	snap.Release()

	g := newFSM()
	require.NoError(t, g.Restore(io.NopCloser(&sink)))
	kv, ok := g.get("a")
	require.True(t, ok)
	assert.Equal(t, KV{Key: "a", Value: []byte("2"), Revision: 2, CreateRevision: 1, Version: 2}, kv)
	_, ok = g.get("b")
	assert.False(t, ok)
	l, ok := g.lockInfo("l")
	require.True(t, ok)
	assert.Equal(t, lockState{Owner: "o", Token: 3, Expires: 101}, l)
	assert.Equal(t, "127.0.0.1:1", g.apiAddr("n1"))
	applied, _ := g.appliedIndex()
	assert.Equal(t, uint64(4), applied)

	assert.Error(t, g.Restore(io.NopCloser(bytes.NewReader([]byte("{not json")))))
	kv, ok = g.get("a")
	assert.True(t, ok, "a failed restore leaves the state alone")
	assert.Equal(t, "2", string(kv.Value))
}

// Every field of a command survives the log, and an entry cut short is
// rejected, not read with zeros in place of what was cut.
func TestCommand_RoundTripAndTruncation(t *testing.T) {
	for _, c := range []command{
		{op: opPut, key: "k", value: []byte("v")},
		{op: opCAS, key: "k", value: []byte("new"), old: []byte("old")},
		{op: opLockAcquire, key: "l", owner: "o", ttl: 5, now: -3},
		{op: opPutFenced, key: "k", value: []byte("v"), lock: "l", owner: "o", token: 1 << 60},
		{op: opPut, key: "k", value: []byte("v"), lease: 7},
		{op: opLeaseExpire, now: 99, ids: []LeaseID{3, 1 << 40, 9}},
	} {
		// An absent value decodes as an empty one.
		c.value, c.old = append([]byte{}, c.value...), append([]byte{}, c.old...)
		b := c.encode()
		got, err := decodeCommand(b)
		require.NoError(t, err, "%+v", c)
		assert.Equal(t, c, got)

		// The entry without lease and ids is the format of entries
		// written before leases existed: a cut there is a whole entry.
		old := c
		old.lease, old.ids = 0, nil
		oldLen := len(old.encode())
		for i := range len(b) {
			got, err := decodeCommand(b[:i])
			if i == oldLen {
				require.NoError(t, err)
				assert.Equal(t, old, got)
				continue
			}
			require.ErrorIs(t, err, ErrInvalidArgument, "%+v cut to %d of %d bytes", c, i, len(b))
		}
	}
}

// applier returns a function applying commands to f at indexes 1, 2, 3...
func applier(f *fsm) func(command) applyResult {
	var index uint64
	return func(c command) applyResult {
		index++
		return applyTo(f, index, c)
	}
}

// A lock is held until its expiry, not at it: at the instant it expires
// another owner takes it and its holder can no longer renew it.
func TestFSM_LockExpiresAtItsExpiry(t *testing.T) {
	apply := applier(newFSM())
	r := apply(command{op: opLockAcquire, key: "l", owner: "alice", ttl: 10, now: 100})
	require.NoError(t, r.err)
	token := r.lease.Token
	r = apply(command{op: opLockAcquire, key: "l", owner: "bob", ttl: 10, now: 109})
	require.ErrorIs(t, r.err, ErrLockHeld, "1 ns before expiry")
	r = apply(command{op: opLockRenew, key: "l", owner: "alice", token: token, ttl: 10, now: 109})
	require.NoError(t, r.err, "renewed 1 ns before expiry, until 119")
	r = apply(command{op: opLockAcquire, key: "l", owner: "bob", ttl: 10, now: 118})
	require.ErrorIs(t, r.err, ErrLockHeld, "renewed until 119")
	r = apply(command{op: opPutFenced, key: "k", value: []byte("v"), lock: "l", owner: "alice", token: token, now: 118})
	require.NoError(t, r.err, "a fenced write 1 ns before expiry")
	r = apply(command{op: opPutFenced, key: "k", value: []byte("v"), lock: "l", owner: "alice", token: token, now: 119})
	require.ErrorIs(t, r.err, ErrLeaseLost, "a fenced write at expiry")
	r = apply(command{op: opLockRenew, key: "l", owner: "alice", token: token, ttl: 10, now: 119})
	require.ErrorIs(t, r.err, ErrLeaseLost, "renewed at expiry")
	r = apply(command{op: opLockAcquire, key: "l", owner: "bob", ttl: 10, now: 119})
	require.NoError(t, r.err, "acquired at expiry")
	r = apply(command{op: opLockRelease, key: "l", owner: "bob", token: r.lease.Token, now: 128})
	require.NoError(t, r.err, "released 1 ns before expiry")
}

// A lease lives until its expiry, not at it: a keep-alive at that instant
// finds it gone.
func TestFSM_LeaseExpiresAtItsExpiry(t *testing.T) {
	apply := applier(newFSM())
	g := apply(command{op: opLeaseGrant, ttl: 10, now: 100})
	require.NoError(t, g.err)
	r := apply(command{op: opLeaseKeepAlive, lease: uint64(g.grant.ID), now: 109})
	require.NoError(t, r.err, "1 ns before expiry, until 119")
	r = apply(command{op: opLeaseKeepAlive, lease: uint64(g.grant.ID), now: 119})
	require.ErrorIs(t, r.err, ErrLeaseNotFound, "at expiry")
}
