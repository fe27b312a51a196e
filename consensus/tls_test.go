package consensus

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// testCA is a certificate authority made for one test: ECDSA P-256, valid
// for an hour.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newTestCA(t testing.TB, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Minute),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool}
}

// issue returns a certificate for cn, valid on 127.0.0.1 and localhost, for
// both server and client authentication.
func (ca *testCA) issue(t testing.TB, cn string) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Minute),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:     []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	require.NoError(t, err)
	leaf, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}

// mutual returns the mutual-TLS config of a node (or client) named cn.
func (ca *testCA) mutual(t testing.TB, cn string) *tls.Config {
	t.Helper()
	return &tls.Config{
		Certificates: []tls.Certificate{ca.issue(t, cn)},
		RootCAs:      ca.pool,
		ClientCAs:    ca.pool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
		MinVersion:   tls.VersionTLS13,
	}
}

// writePEM writes cn's certificate and key, and the CA's certificate, to
// files in dir.
func (ca *testCA) writePEM(t testing.TB, dir, cn string) (certFile, keyFile, caFile string) {
	t.Helper()
	c := ca.issue(t, cn)
	keyDER, err := x509.MarshalECPrivateKey(c.PrivateKey.(*ecdsa.PrivateKey))
	require.NoError(t, err)
	certFile, keyFile, caFile = filepath.Join(dir, cn+".crt"), filepath.Join(dir, cn+".key"), filepath.Join(dir, "ca.crt")
	require.NoError(t, os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Certificate[0]}), 0o600))
	require.NoError(t, os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600))
	require.NoError(t, os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.cert.Raw}), 0o600))
	return certFile, keyFile, caFile
}

// startTLSCluster starts three nodes on loopback, each with its own
// certificate from ca, and waits for a leader.
func startTLSCluster(t *testing.T, ctx context.Context, ca *testCA) (nodes []*Node, leader *Node) {
	t.Helper()
	var servers []Server
	for i := range 3 {
		id := fmt.Sprintf("s%d", i+1)
		n, err := NewNode(Options{ID: id, Addr: "127.0.0.1:0", InMemory: true, Timing: testTiming(), TLS: ca.mutual(t, id)})
		require.NoError(t, err)
		t.Cleanup(func() { _ = n.Close(context.Background()) })
		nodes = append(nodes, n)
		servers = append(servers, Server{ID: id, Address: n.Addr()})
	}
	require.NoError(t, nodes[0].Bootstrap(ctx, servers...))
	eventually(t, ctx, "a leader", func() bool {
		for _, n := range nodes {
			if n.IsLeader() {
				leader = n
				return true
			}
		}
		return false
	})
	return nodes, leader
}

// Guide: Security Considerations (TLS in transit). Three nodes, each with
// its own certificate from the cluster's CA, elect a leader and replicate
// over mutual TLS.
func TestTLS_ClusterElectsAndReplicates(t *testing.T) {
	ctx := testCtx(t)
	nodes, _ := startTLSCluster(t, ctx, newTestCA(t, "cluster CA"))
	putOnLeaderOf(t, ctx, nodes, "k", "v")
	for _, n := range nodes {
		waitValue(t, ctx, n, "k", "v")
	}
}

// A server without a certificate from the cluster's CA, or speaking plain
// TCP, cannot join (the leader's handshake fails, the configuration is
// unchanged) nor append to a member's log, even with a term far above the
// cluster's.
func TestTLS_ForeignPeerCannotJoinOrAppend(t *testing.T) {
	ctx := testCtx(t)
	nodes, leader := startTLSCluster(t, ctx, newTestCA(t, "cluster CA"))
	putOnLeaderOf(t, ctx, nodes, "k", "v")
	var follower *Node
	for _, n := range nodes {
		if n != leader {
			follower = n
		}
	}
	waitValue(t, ctx, follower, "k", "v")

	other := newTestCA(t, "other CA")
	rogues := map[string]func(t *testing.T) raft.Transport{
		"other CA": func(t *testing.T) raft.Transport {
			n, err := NewNode(Options{ID: "rogue", Addr: "127.0.0.1:0", InMemory: true, Timing: testTiming(), TLS: other.mutual(t, "s1")})
			require.NoError(t, err)
			t.Cleanup(func() { _ = n.Close(context.Background()) })
			return n.trans
		},
		"plain TCP": func(t *testing.T) raft.Transport {
			tr, err := raft.NewTCPTransport("127.0.0.1:0", nil, 1, time.Second, io.Discard)
			require.NoError(t, err)
			t.Cleanup(func() { _ = tr.Close() })
			return tr
		},
	}
	for name, newRogue := range rogues {
		t.Run(name, func(t *testing.T) {
			rogue := newRogue(t)
			before := follower.Stats()

			jctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			defer cancel()
			err := leader.AddVoter(jctx, "rogue", string(rogue.LocalAddr()))
			require.ErrorIs(t, err, ErrInvalidArgument, "the leader added a server it cannot authenticate")
			assert.ErrorContains(t, err, "failed the cluster's TLS handshake")
			servers, err := leader.Servers(ctx)
			require.NoError(t, err)
			assert.Len(t, servers, 3, "the configuration is unchanged")

			evil := (&command{op: opPut, key: "k", value: []byte("evil")}).encode()
			req := &raft.AppendEntriesRequest{
				RPCHeader:         raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax, ID: []byte("rogue"), Addr: []byte(rogue.LocalAddr())},
				Term:              1 << 40,
				Entries:           []*raft.Log{{Index: before.LastIndex + 1, Term: 1 << 40, Type: raft.LogCommand, Data: evil}},
				PrevLogEntry:      before.LastIndex,
				PrevLogTerm:       before.Term,
				LeaderCommitIndex: before.LastIndex + 1,
			}
			var resp raft.AppendEntriesResponse
			err = rogue.AppendEntries(raft.ServerID(follower.ID()), raft.ServerAddress(follower.Addr()), req, &resp)
			require.Error(t, err, "a member accepted an AppendEntries from a foreign peer")
			// An election on a busy machine may raise the term, but never to
			// the rogue's.
			assert.Less(t, follower.Stats().Term, uint64(1<<40), "the rogue's term never reached the member")
			kv, err := follower.Read(ctx, "k", Stale)
			require.NoError(t, err)
			assert.Equal(t, "v", string(kv.Value))
		})
	}
}

func TestNewNode_HalfConfiguredTLSRefused(t *testing.T) {
	ca := newTestCA(t, "cluster CA")
	full := func() *tls.Config { return ca.mutual(t, "n1") }
	cases := map[string]struct {
		conf func() *tls.Config
		want string
	}{
		"no certificate": {func() *tls.Config { c := full(); c.Certificates = nil; return c }, "a certificate"},
		"no RootCAs":     {func() *tls.Config { c := full(); c.RootCAs = nil; return c }, "RootCAs"},
		"no ClientCAs":   {func() *tls.Config { c := full(); c.ClientCAs = nil; return c }, "ClientCAs"},
		"client cert optional": {func() *tls.Config {
			c := full()
			c.ClientAuth = tls.VerifyClientCertIfGiven
			return c
		}, "RequireAndVerifyClientCert"},
		"no verification": {func() *tls.Config { c := full(); c.InsecureSkipVerify = true; return c }, "InsecureSkipVerify"},
		"a server certificate alone": {func() *tls.Config {
			c := full()
			cert := c.Certificates[0]
			c.Certificates = nil
			c.GetCertificate = func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return &cert, nil }
			return c
		}, "a client certificate"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := NewNode(Options{ID: "n1", Addr: "127.0.0.1:0", InMemory: true, TLS: tc.conf()})
			require.ErrorIs(t, err, ErrInvalidConfig)
			assert.ErrorContains(t, err, tc.want)
		})
	}
	t.Run("certificates from callbacks", func(t *testing.T) {
		c := full()
		cert := c.Certificates[0]
		c.Certificates = nil
		c.GetCertificate = func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return &cert, nil }
		c.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert, nil }
		assert.NoError(t, validateTLS("n1", c))
	})
	t.Run("with a Transport", func(t *testing.T) {
		_, tr := raft.NewInmemTransport("x")
		_, err := NewNode(Options{ID: "n1", Transport: tr, InMemory: true, TLS: full()})
		require.ErrorIs(t, err, ErrInvalidConfig)
		assert.ErrorContains(t, err, "Transport")
	})
	t.Run("in-memory cluster", func(t *testing.T) {
		_, err := NewLocalCluster(testCtx(t), ClusterOptions{Node: Options{TLS: full()}})
		require.ErrorIs(t, err, ErrInvalidConfig)
		assert.ErrorContains(t, err, "TCP")
	})
}

func TestMutualTLS_Files(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t, "cluster CA")
	cert, key, caFile := ca.writePEM(t, dir, "n1")
	notPEM := filepath.Join(dir, "not.pem")
	require.NoError(t, os.WriteFile(notPEM, []byte("hello"), 0o600))

	conf, err := MutualTLS(cert, key, caFile)
	require.NoError(t, err)
	assert.NoError(t, validateTLS("n1", conf))

	for name, tc := range map[string]struct {
		cert, key, ca, want string
	}{
		"certificate without key": {cert, "", caFile, "[key]"},
		"no CA":                   {cert, key, "", "[CA]"},
		"nothing":                 {"", "", "", "[certificate key CA]"},
		"key of another file":     {cert, caFile, caFile, caFile},
		"CA file without PEM":     {cert, key, notPEM, "holds no PEM certificate"},
		"missing CA file":         {cert, key, filepath.Join(dir, "absent.crt"), "absent.crt"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := MutualTLS(tc.cert, tc.key, tc.ca)
			require.ErrorIs(t, err, ErrInvalidConfig)
			assert.ErrorContains(t, err, tc.want)
		})
	}
}
