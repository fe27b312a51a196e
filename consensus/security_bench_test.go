package consensus

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/hashicorp/raft"
)

// BenchmarkNode_PutTLS measures the cost of TLS between nodes: writes
// through three nodes on loopback TCP with mutual TLS (tls=on) beside the
// plain TCP transport (tls=off), in the same run, with one client (the
// latency of a write) and 16 (throughput). Both replicate as a Node
// does (without raft's pipeline), with the same timing and in-memory
// storage, so the difference is the transport's.
func BenchmarkNode_PutTLS(b *testing.B) {
	ca := newTestCA(b, "bench CA")
	value := []byte("0123456789abcdef0123456789abcdef")
	ctx := context.Background()
	for _, mode := range []string{"off", "on"} {
		opts := ClusterOptions{Network: TCPNetwork, Node: Options{Timing: DefaultTiming()}}
		if mode == "on" {
			opts.Node.TLS = ca.mutual(b, "node")
		}
		c := newCluster(b, opts)
		for _, clients := range []int{1, 16} {
			b.Run(fmt.Sprintf("tls=%s/clients=%d", mode, clients), func(b *testing.B) {
				b.ReportAllocs()
				runClients(b, clients, func(i int) error {
					return retryOnLeader(ctx, c, func(n *Node) error {
						_, err := n.Put(ctx, fmt.Sprintf("k%d", i%1024), value)
						return err
					})
				})
			})
		}
	}
}

// BenchmarkAuth_Authenticate measures the access control's cost per
// request: a bearer token hashed and checked against tables of 1, 10 and
// 100 users (every token compared in constant time, so the cost grows with
// the table), and the role check. Without access control the handler does
// none of it.
func BenchmarkAuth_Authenticate(b *testing.B) {
	for _, users := range []int{1, 10, 100} {
		var table []User
		for i := range users {
			table = append(table, User{Name: fmt.Sprintf("u%d", i), Token: fmt.Sprintf("token-%04d-0123456789abcdef", i), Role: RoleReadWrite})
		}
		a, err := NewAuth(table...)
		if err != nil {
			b.Fatal(err)
		}
		req, err := http.NewRequest("GET", "http://node/v1/kv/k", nil)
		if err != nil {
			b.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+table[users-1].Token)
		b.Run(fmt.Sprintf("auth=token/users=%d", users), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				u, err := a.Authenticate(req)
				if err != nil || !u.Allows(RoleReadOnly, "k") {
					b.Fatal(u, err)
				}
			}
		})
	}
}

// BenchmarkNode_Backup measures a backup of a store of 1M keys (10k with
// -short): its time, and its size in bytes/backup. The store is filled
// through the state machine directly, which a backup cannot tell from
// writes through the log, to keep the set-up short.
func BenchmarkNode_Backup(b *testing.B) {
	keys := 1_000_000
	if testing.Short() {
		keys = 10_000
	}
	c := newCluster(b, ClusterOptions{Nodes: 1})
	n := c.Nodes()[0]
	ctx := context.Background()
	if _, err := n.Put(ctx, "first", []byte("v")); err != nil {
		b.Fatal(err)
	}
	base := n.raft.LastIndex()
	value := []byte("0123456789abcdef0123456789abcdef")
	for i := range keys {
		data := (&command{op: opPut, key: fmt.Sprintf("key/%08d", i), value: value}).encode()
		n.fsm.Apply(&raft.Log{Index: base + uint64(i) + 1, Type: raft.LogCommand, Data: data})
	}
	var size int64
	b.Run(fmt.Sprintf("keys=%d", keys), func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			info, err := n.Backup(ctx, io.Discard)
			if err != nil {
				b.Fatal(err)
			}
			size = info.Size
		}
		b.ReportMetric(float64(size), "bytes/backup")
		b.ReportMetric(float64(size)/float64(keys), "bytes/key")
	})
	// The backup restores: checked once, outside the timing.
	var buf bytes.Buffer
	if _, err := n.Backup(ctx, &buf); err != nil {
		b.Fatal(err)
	}
	if _, _, err := readBackup(strings.NewReader(buf.String())); err != nil {
		b.Fatal(err)
	}
}
