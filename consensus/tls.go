package consensus

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// MutualTLS returns a [tls.Config] for mutual TLS inside one cluster, as
// [Options.TLS] wants it: the PEM certificate and key at certFile and
// keyFile serve as both the server's and the client's certificate, the PEM
// certificates at caFile (the cluster's CA) verify peers in both
// directions, every peer must present a certificate
// (tls.RequireAndVerifyClientCert), and TLS 1.3 is the minimum. Every path
// is required; an empty one, an unreadable file or a CA file without a
// certificate fails with [ErrInvalidConfig] naming it.
//
// The node's certificate needs the addresses peers dial (IP or DNS
// subject alternative names) and both the server and client extended key
// usages. For the HTTP API, set the returned config's ClientAuth to
// tls.VerifyClientCertIfGiven to admit clients that authenticate with a
// bearer token instead ([Auth]).
func MutualTLS(certFile, keyFile, caFile string) (*tls.Config, error) {
	var missing []string
	for _, f := range []struct{ name, path string }{{"certificate", certFile}, {"key", keyFile}, {"CA", caFile}} {
		if f.path == "" {
			missing = append(missing, f.name)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("%w: mutual TLS needs a certificate, a key and a CA file: no %v file given", ErrInvalidConfig, missing)
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("%w: TLS certificate %q with key %q: %v", ErrInvalidConfig, certFile, keyFile, err)
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("%w: TLS CA file: %v", ErrInvalidConfig, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%w: TLS CA file %q holds no PEM certificate", ErrInvalidConfig, caFile)
	}
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		RootCAs:      pool,
		ClientCAs:    pool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
		MinVersion:   tls.VersionTLS13,
	}, nil
}

// validateTLS says what a Raft transport's TLS configuration lacks for
// mutual authentication.
func validateTLS(id string, c *tls.Config) error {
	var missing []string
	if len(c.Certificates) == 0 && c.GetCertificate == nil {
		missing = append(missing, "a certificate (Certificates or GetCertificate)")
	}
	if len(c.Certificates) == 0 && c.GetClientCertificate == nil && c.GetCertificate != nil {
		missing = append(missing, "a client certificate (Certificates or GetClientCertificate)")
	}
	if c.RootCAs == nil {
		missing = append(missing, "a CA to verify the peers a node dials (RootCAs)")
	}
	if c.ClientCAs == nil {
		missing = append(missing, "a CA to verify the peers that dial the node (ClientCAs)")
	}
	if c.ClientAuth != tls.RequireAndVerifyClientCert {
		missing = append(missing, fmt.Sprintf("ClientAuth RequireAndVerifyClientCert (have %v)", c.ClientAuth))
	}
	if c.InsecureSkipVerify {
		missing = append(missing, "verification of the peers' certificates (InsecureSkipVerify is set)")
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: node %q: mutual TLS between nodes needs %v", ErrInvalidConfig, id, missing)
	}
	return nil
}

// handshakeTimeout bounds a TLS handshake on the Raft transport, so that a
// peer that connects and stays silent holds nothing for long.
const handshakeTimeout = 10 * time.Second

// tlsStreamLayer is hashicorp/raft's stream layer over crypto/tls: the
// node's listener wrapped by tls.NewListener, and a dialer that completes
// the handshake before raft writes an RPC.
type tlsStreamLayer struct {
	net.Listener
	conf      *tls.Config
	advertise net.Addr
}

var _ raft.StreamLayer = (*tlsStreamLayer)(nil)

// newTLSTransport listens on bind and returns a NetworkTransport whose
// connections are mutually authenticated with conf.
func newTLSTransport(bind string, advertise net.Addr, conf *tls.Config, maxPool int, timeout time.Duration, logger hclog.Logger) (*raft.NetworkTransport, error) {
	ln, err := net.Listen("tcp", bind)
	if err != nil {
		return nil, err
	}
	if advertise == nil {
		advertise = ln.Addr()
	}
	if a, ok := advertise.(*net.TCPAddr); ok && a.IP.IsUnspecified() {
		ln.Close()
		return nil, fmt.Errorf("%w: address %v is not advertisable (set Advertise)", ErrInvalidConfig, advertise)
	}
	layer := &tlsStreamLayer{Listener: ln, conf: conf, advertise: advertise}
	return raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{Stream: layer, MaxPool: maxPool, Timeout: timeout, Logger: logger}), nil
}

// Accept returns the next connection, whose TLS handshake runs, bounded by
// handshakeTimeout, on its first read or write: in raft's per-connection
// goroutine, not in its accept loop.
func (l *tlsStreamLayer) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &serverConn{Conn: tls.Server(c, l.conf)}, nil
}

// Addr returns the address peers dial.
func (l *tlsStreamLayer) Addr() net.Addr { return l.advertise }

// Dial connects to a peer and completes the TLS handshake, verifying the
// peer's certificate against the cluster's CA and the dialed host.
func (l *tlsStreamLayer) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	d := tls.Dialer{NetDialer: &net.Dialer{}, Config: l.conf}
	return d.DialContext(ctx, "tcp", string(addr))
}

// serverConn is a server-side TLS connection whose handshake is bounded.
type serverConn struct {
	*tls.Conn
	once sync.Once
	err  error
}

func (c *serverConn) handshake() error {
	c.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), handshakeTimeout)
		defer cancel()
		c.err = c.Conn.HandshakeContext(ctx)
	})
	return c.err
}

func (c *serverConn) Read(b []byte) (int, error) {
	if err := c.handshake(); err != nil {
		return 0, err
	}
	return c.Conn.Read(b)
}

func (c *serverConn) Write(b []byte) (int, error) {
	if err := c.handshake(); err != nil {
		return 0, err
	}
	return c.Conn.Write(b)
}

// probeTLS completes a TLS handshake with the Raft address addr, so that a
// membership change never adds a server the cluster cannot authenticate.
func probeTLS(ctx context.Context, conf *tls.Config, addr string) error {
	ctx, cancel := context.WithTimeout(ctx, handshakeTimeout)
	defer cancel()
	d := tls.Dialer{NetDialer: &net.Dialer{}, Config: conf}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("consensus: TLS handshake with %q: %w", addr, ctx.Err())
		}
		return fmt.Errorf("%w: server at %q failed the cluster's TLS handshake: %v", ErrInvalidArgument, addr, err)
	}
	return c.Close()
}
