package lockdown

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Each certificate verifies against the CA for 127.0.0.1, as a server and
// as a client, and names its holder.
func TestWriteCerts_CertificatesVerify(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, WriteCerts(dir, []string{"n1", "root"}))
	pem, err := os.ReadFile(filepath.Join(dir, "ca.crt"))
	require.NoError(t, err)
	pool := x509.NewCertPool()
	require.True(t, pool.AppendCertsFromPEM(pem))
	for _, name := range []string{"n1", "root"} {
		pair, err := tls.LoadX509KeyPair(filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key"))
		require.NoError(t, err)
		assert.Equal(t, name, pair.Leaf.Subject.CommonName)
		for _, usage := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
			_, err = pair.Leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: "127.0.0.1", KeyUsages: []x509.ExtKeyUsage{usage}})
			assert.NoError(t, err, "%s for %v", name, usage)
		}
		info, err := os.Stat(filepath.Join(dir, name+".key"))
		require.NoError(t, err)
		assert.Equal(t, os.FileMode(0o600), info.Mode().Perm(), "a key is its owner's only")
	}
}

func TestWriteCerts_RefusesBadNames(t *testing.T) {
	for _, name := range []string{"", "ca", "../n1", "a/b"} {
		err := WriteCerts(t.TempDir(), []string{name})
		assert.ErrorContains(t, err, "not a usable certificate name", "%q", name)
	}
}
