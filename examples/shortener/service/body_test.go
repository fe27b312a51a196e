package service

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A client uploading a body far over the limit reads the 413, not a
// connection reset: the service reads what is still coming before it
// answers and closes.
func TestOversizedBodyGets413(t *testing.T) {
	body := []byte(`{"url":"https://example.com/` + strings.Repeat("x", 3<<20) + `"}`)
	for _, instances := range []int{1, 3} {
		t.Run(fmt.Sprintf("instances=%d", instances), func(t *testing.T) {
			c := start(t, ClusterConfig{DataDir: t.TempDir(), Instances: instances, Service: Config{CreateLimit: limitPerHour(1000)}})
			defer stop(t, c)
			tr := http.DefaultTransport.(*http.Transport).Clone()
			defer tr.CloseIdleConnections()
			hc := &http.Client{Transport: tr}
			for i := range 10 {
				resp, err := hc.Post(c.URL()+"/api/v1/urls", "application/json", bytes.NewReader(body))
				require.NoError(t, err, "attempt %d", i)
				b, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				require.NoError(t, err)
				require.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode, "attempt %d: %s", i, b)
				assert.Contains(t, string(b), `"code":"body_too_large"`)
			}
			// The service still serves on.
			newClient(t, c.URL()).mustCreate("https://example.com/after")
		})
	}
	t.Run("curl", func(t *testing.T) {
		curl, err := exec.LookPath("curl")
		if err != nil {
			t.Skip("curl is not installed")
		}
		c := start(t, ClusterConfig{DataDir: t.TempDir(), Service: Config{CreateLimit: limitPerHour(1000)}})
		defer stop(t, c)
		file := filepath.Join(t.TempDir(), "body.json")
		require.NoError(t, os.WriteFile(file, body, 0o600))
		for i := range 5 {
			// An answer given before anything is read, too: the declared
			// length is over the limit, which is checked before the type.
			for ctype, want := range map[string]string{"application/json": "413", "text/plain": "413"} {
				out, err := exec.Command(curl, "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-H", "Content-Type: "+ctype,
					"--data-binary", "@"+file, c.URL()+"/api/v1/urls").CombinedOutput()
				require.NoError(t, err, "attempt %d, %s: %s", i, ctype, out)
				assert.Equal(t, want, string(out), "attempt %d, %s", i, ctype)
			}
		}
	})
}
