package fleet

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/sysdesign-go/sysdesign/examples/internal/httpsec"
	"github.com/sysdesign-go/sysdesign/lb"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// instance is a service instance as the examples build them: request IDs
// through httpsec, a health check, and a body naming the instance and the
// request ID it saw.
func instance(name string, served *atomic.Int64) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {})
	mux.HandleFunc("GET /", func(w http.ResponseWriter, r *http.Request) {
		served.Add(1)
		fmt.Fprintf(w, "%s %s", name, httpsec.RequestID(r.Context()))
	})
	return httpsec.WithRequestID(mux)
}

func get(t *testing.T, c *http.Client, url, requestID string) (body string, ids []string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	require.NoError(t, err)
	if requestID != "" {
		req.Header.Set(httpsec.RequestIDHeader, requestID)
	}
	resp, err := c.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(b))
	return string(b), resp.Header.Values(httpsec.RequestIDHeader)
}

// Behind the balancer, requests reach both instances; each response
// carries one request ID, the one the instance saw (the client's own when
// it sent one); once an instance is killed every request reaches the
// other, and the health checks take the killed one out of rotation.
func TestBalancedFleet(t *testing.T) {
	var served [2]atomic.Int64
	f, err := Start([]http.Handler{instance("a", &served[0]), instance("b", &served[1])}, Options{
		Algorithm: lb.RoundRobin{},
		Health:    lb.HealthCheckOptions{Interval: 100 * time.Millisecond, Timeout: 100 * time.Millisecond},
	})
	require.NoError(t, err)
	defer func() { require.NoError(t, f.Close(context.Background())) }()
	require.Len(t, f.URLs, 2)
	require.NotNil(t, f.Balancer)
	assert.NotContains(t, f.URLs, f.URL())
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 5 * time.Second}

	for range 10 {
		body, ids := get(t, c, f.URL()+"/", "")
		require.Len(t, ids, 1, "one X-Request-ID")
		assert.Regexp(t, `^[ab] `+ids[0]+`$`, body, "the instance saw the balancer's id")
	}
	assert.Equal(t, int64(5), served[0].Load())
	assert.Equal(t, int64(5), served[1].Load())
	body, ids := get(t, c, f.URL()+"/", "client-id-1")
	assert.Equal(t, []string{"client-id-1"}, ids)
	assert.Regexp(t, `^[ab] client-id-1$`, body)

	require.NoError(t, f.Kill(0))
	require.NoError(t, f.Kill(0), "a second kill does nothing")
	before := served[1].Load()
	for range 10 { // the proxy tries the other instance at once
		body, _ := get(t, c, f.URL()+"/", "")
		assert.Regexp(t, `^b `, body)
	}
	assert.Equal(t, before+10, served[1].Load())
	require.Eventually(t, func() bool {
		for _, b := range f.Balancer.Stats().Backends {
			if b.Addr == f.URLs[0] {
				return b.State == lb.StateUnhealthy
			}
		}
		return false
	}, 10*time.Second, 10*time.Millisecond, "the health checks find the killed instance")
}

// One instance serves on the clients' address with no balancer.
func TestSingleInstance(t *testing.T) {
	var served atomic.Int64
	f, err := Start([]http.Handler{instance("a", &served)}, Options{})
	require.NoError(t, err)
	defer func() { require.NoError(t, f.Close(context.Background())) }()
	assert.Equal(t, []string{f.URL()}, f.URLs)
	assert.Nil(t, f.Balancer)
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	body, ids := get(t, &http.Client{Transport: tr, Timeout: 5 * time.Second}, f.URL()+"/", "")
	require.Len(t, ids, 1)
	assert.Equal(t, "a "+ids[0], body)
}

// No instances, too many, or a Kill of no instance: ErrInvalid, naming
// the number.
func TestInvalid(t *testing.T) {
	_, err := Start(nil, Options{})
	require.ErrorIs(t, err, ErrInvalid)
	assert.ErrorContains(t, err, "0 instances")
	_, err = Start(make([]http.Handler, maxInstances+1), Options{})
	require.ErrorIs(t, err, ErrInvalid)
	assert.ErrorContains(t, err, "65 instances")

	var served atomic.Int64
	f, err := Start([]http.Handler{instance("a", &served)}, Options{})
	require.NoError(t, err)
	defer func() { require.NoError(t, f.Close(context.Background())) }()
	for _, i := range []int{-1, 1} {
		err := f.Kill(i)
		require.ErrorIs(t, err, ErrInvalid)
		assert.ErrorContains(t, err, fmt.Sprintf("no instance %d", i))
	}
}
