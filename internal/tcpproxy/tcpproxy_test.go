package tcpproxy

import (
	"bufio"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// echoServer echoes each line back.
func echoServer(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					if _, err := c.Write([]byte(line)); err != nil {
						return
					}
				}
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	return ln.Addr().String()
}

func roundTrip(c net.Conn, msg string, timeout time.Duration) (string, error) {
	_ = c.SetDeadline(time.Now().Add(timeout))
	if _, err := c.Write([]byte(msg + "\n")); err != nil {
		return "", err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return line, err
}

func TestProxyModes(t *testing.T) {
	p, err := New(echoServer(t))
	require.NoError(t, err)
	defer p.Close()

	c, err := net.Dial("tcp", p.Addr())
	require.NoError(t, err)
	defer c.Close()
	got, err := roundTrip(c, "hello", time.Second)
	require.NoError(t, err)
	assert.Equal(t, "hello\n", got)

	p.Blackhole()
	assert.Equal(t, Blackhole, p.Mode())
	_, err = roundTrip(c, "lost", 100*time.Millisecond)
	var ne net.Error
	require.ErrorAs(t, err, &ne)
	assert.True(t, ne.Timeout(), "a blackholed link times out, got %v", err)

	p.Cut()
	_, err = roundTrip(c, "x", time.Second)
	assert.Error(t, err, "cut resets open connections")
	c2, err := net.Dial("tcp", p.Addr())
	if err == nil { // the listener accepts, then closes at once
		_, err = roundTrip(c2, "x", time.Second)
		c2.Close()
	}
	assert.Error(t, err, "cut refuses new connections")

	p.Restore()
	c3, err := net.Dial("tcp", p.Addr())
	require.NoError(t, err)
	defer c3.Close()
	got, err = roundTrip(c3, "back", time.Second)
	require.NoError(t, err)
	assert.Equal(t, "back\n", got)
}

func TestProxyLatency(t *testing.T) {
	p, err := New(echoServer(t))
	require.NoError(t, err)
	defer p.Close()
	p.SetLatency(30 * time.Millisecond)
	c, err := net.Dial("tcp", p.Addr())
	require.NoError(t, err)
	defer c.Close()
	start := time.Now()
	_, err = roundTrip(c, "slow", time.Second)
	require.NoError(t, err)
	assert.GreaterOrEqual(t, time.Since(start), 60*time.Millisecond, "delay applies in both directions")
}

func TestNewRejectsEmptyTarget(t *testing.T) {
	_, err := New("")
	assert.Error(t, err)
}
