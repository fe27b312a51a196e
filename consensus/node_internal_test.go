package consensus

import (
	"reflect"
	"testing"

	"github.com/hashicorp/raft"
	"github.com/stretchr/testify/assert"
)

// A future hashicorp/raft never answers (queued when the node shut down)
// still returns once the node's done channel closes.
func TestBindShutdownEndsOrphanedFutures(t *testing.T) {
	_, tr := raft.NewInmemTransport("x")
	defer tr.Close()
	n, err := NewNode(Options{ID: "x", Transport: tr, InMemory: true, Timing: LANTiming()})
	assert.NoError(t, err)
	// raft's own future types accept the binding.
	for _, f := range []raft.Future{n.raft.VerifyLeader(), n.raft.GetConfiguration()} {
		ch := make(chan struct{})
		bindShutdown(f, ch)
		got := reflect.ValueOf(f).Elem().FieldByName("ShutdownCh")
		assert.Equal(t, reflect.ValueOf(ch).Pointer(), got.Pointer(), "%T", f)
		_ = f.Error()
	}
	assert.NoError(t, n.Close())
	f := n.raft.VerifyLeader() // after shutdown: answered at once
	assert.ErrorIs(t, n.wait(t.Context(), f), ErrClosed)

	// An unexported future type, as raft's verify future is: the helper
	// must reach its embedded ShutdownCh.
	done := make(chan struct{})
	g := raft.Future(&orphan{})
	bindShutdown(g, done)
	close(done)
	assert.ErrorIs(t, g.Error(), raft.ErrRaftShutdown)
}

// orphan mimics raft's futures: an embedded struct with a ShutdownCh.
type orphan struct{ inner }

type inner struct {
	ShutdownCh chan struct{}
}

func (o *orphan) Error() error {
	<-o.ShutdownCh
	return raft.ErrRaftShutdown
}
