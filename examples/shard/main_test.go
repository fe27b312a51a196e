package main

import (
	"bytes"
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/sysdesign-go/sysdesign/internal/redistest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestRunInMemory(t *testing.T) {
	var out bytes.Buffer
	require.NoError(t, run(context.Background(), []string{"-keys", "2000", "-shards", "3"}, &out))
	s := out.String()
	assert.Contains(t, s, "Adding shard s3 to 3 shards, 2000 keys (ideal: 25.0% move)")
	assert.Regexp(t, `modulo\s+7\d\.\d%`, s, "modulo moves about 3/4 of the keys")
	assert.Regexp(t, `jump\s+2\d\.\d%`, s)
	assert.Contains(t, s, "0 missing at verify")
	assert.Contains(t, s, "(keys copied can be fewer than old copies deleted: the writer's writes", "the copied figure is explained")
	assert.Contains(t, s, "Count over all shards: 2000 keys")
	assert.Contains(t, s, "Ordered scan from order:0000100, limit 3: order:0000100 order:0000101 order:0000102")
}

func TestRunOnRedis(t *testing.T) {
	db := redistest.New(t)
	var out bytes.Buffer
	require.NoError(t, run(context.Background(), []string{"-keys", "500", "-redis", db.Addr}, &out))
	assert.Contains(t, out.String(), "Count over all shards: 500 keys")
	assert.Contains(t, out.String(), "0 missing at verify")
}

func TestRunBadFlags(t *testing.T) {
	var out bytes.Buffer
	assert.Error(t, run(context.Background(), []string{"-keys", "0"}, &out))
	assert.Error(t, run(context.Background(), []string{"-nope"}, &out))
}
