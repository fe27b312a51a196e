package consensus

import (
	"io"
	"testing"

	"github.com/hashicorp/raft"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func readSnapshot(t *testing.T, s raft.SnapshotStore) (raft.SnapshotMeta, string) {
	t.Helper()
	list, err := s.List()
	require.NoError(t, err)
	require.Len(t, list, 1)
	meta, rc, err := s.Open(list[0].ID)
	require.NoError(t, err)
	defer rc.Close()
	b, err := io.ReadAll(rc)
	require.NoError(t, err)
	return *meta, string(b)
}

// An in-memory snapshot is listed and opened only once its sink is
// closed: a leader sending its latest snapshot to a lagging follower never
// reads one the state machine is still writing, nor a cancelled one.
func TestInmemSnapshots_VisibleOnlyWhenComplete(t *testing.T) {
	s := newInmemStorage().snaps
	list, err := s.List()
	require.NoError(t, err)
	assert.Empty(t, list)

	first, err := s.Create(1, 10, 1, raft.Configuration{}, 1, nil)
	require.NoError(t, err)
	_, _ = first.Write([]byte("first"))
	require.NoError(t, first.Close())

	next, err := s.Create(1, 20, 2, raft.Configuration{}, 1, nil)
	require.NoError(t, err)
	_, _ = next.Write([]byte("half"))
	meta, data := readSnapshot(t, s)
	assert.Equal(t, uint64(10), meta.Index, "the snapshot being written is not yet visible")
	assert.Equal(t, "first", data)

	_, _ = next.Write([]byte("-done"))
	require.NoError(t, next.Close())
	meta, data = readSnapshot(t, s)
	assert.Equal(t, uint64(20), meta.Index)
	assert.Equal(t, int64(len("half-done")), meta.Size)
	assert.Equal(t, "half-done", data)

	cancelled, err := s.Create(1, 30, 2, raft.Configuration{}, 1, nil)
	require.NoError(t, err)
	_, _ = cancelled.Write([]byte("never"))
	require.NoError(t, cancelled.Cancel())
	meta, _ = readSnapshot(t, s)
	assert.Equal(t, uint64(20), meta.Index, "a cancelled snapshot is never published")

	_, err = s.Create(2, 40, 2, raft.Configuration{}, 1, nil)
	assert.Error(t, err, "unknown snapshot version")
}
