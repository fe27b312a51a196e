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
