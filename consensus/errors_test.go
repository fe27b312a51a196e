package consensus

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestNotLeaderError_NamesTheLeaderItKnows(t *testing.T) {
	assert.Equal(t, "consensus: not the leader (no leader known)", (&NotLeaderError{}).Error())
	assert.Equal(t, `consensus: not the leader (leader is "n2" at 127.0.0.1:7002)`,
		(&NotLeaderError{LeaderID: "n2", LeaderAddr: "127.0.0.1:7002"}).Error())
}
