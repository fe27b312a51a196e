package service_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-go/sysdesign/examples/chat/service"
	"github.com/sysdesign-go/sysdesign/examples/internal/chromium"
)

// Two pages in headless Chromium, alice's and bob's, exchange a message
// through the gateway: the page works under its Content-Security-Policy,
// shows the message once and acknowledges it.
func TestPageInBrowser(t *testing.T) {
	bin := chromium.Find(t, "for the chat page")
	e := newEnv(t, 1, service.Config{}, false)
	st, h, _ := e.call("GET", e.urls[0]+"/", "", "", nil)
	require.Equal(t, http.StatusOK, st)
	require.Contains(t, h.Get("Content-Security-Policy"), "default-src 'self'")

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(bin), chromedp.NoSandbox,
		chromedp.Flag("disable-gpu", true), chromedp.UserDataDir(t.TempDir()))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	browser, cancelBrowser := chromedp.NewContext(actx)
	defer cancelBrowser()
	ctx, cancel := context.WithTimeout(browser, 60*time.Second)
	defer cancel()
	require.NoError(t, chromedp.Do(ctx)) // starts the browser

	alice, cancelA := chromedp.NewContext(ctx)
	defer cancelA()
	bob, cancelB := chromedp.NewContext(ctx)
	defer cancelB()
	open := func(tab context.Context, user string) {
		require.NoError(t, chromedp.Do(tab,
			chromedp.Navigate(e.urls[0]+"/#token="+e.token(user)),
			chromedp.WaitVisible("#compose"),
		), "%s's page loads", user)
		_, err := chromedp.Run(tab, chromedp.Poll[bool](`document.getElementById("status").textContent.startsWith("connected as `+user+`")`, chromedp.WithPollingTimeout(20*time.Second)))
		require.NoError(t, err, "%s's page connects", user)
	}
	open(alice, "alice")
	open(bob, "bob")

	require.NoError(t, chromedp.Do(alice,
		chromedp.SendKeys("#to", "bob"),
		chromedp.SendKeys("#text", "hello from a browser"),
		chromedp.Click("#send"),
	))
	_, err := chromedp.Run(bob, chromedp.Poll[bool](`document.querySelectorAll("#log li").length > 0`, chromedp.WithPollingTimeout(20*time.Second)))
	require.NoError(t, err, "bob's page shows the message")
	got, err := chromedp.Run(bob, chromedp.Text("#log"))
	require.NoError(t, err)
	assert.Contains(t, got, "alice: hello from a browser")
	assert.Contains(t, got, "d:alice:bob #1")
	// Bob's page acknowledged it: the gateway records seq 1 for him.
	require.Eventually(t, func() bool {
		v, err := e.db.Client.HGet(context.Background(), e.db.Prefix+"{u:bob}:acked", "d:alice:bob").Result()
		return err == nil && v == "1"
	}, 10*time.Second, 50*time.Millisecond)
	count, err := chromedp.Run(bob, chromedp.Evaluate[int](`document.querySelectorAll("#log li").length`))
	require.NoError(t, err)
	assert.Equal(t, 1, count, "shown once")
}
