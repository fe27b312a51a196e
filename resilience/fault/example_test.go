package fault_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/sysdesign-go/sysdesign/resilience/fault"
)

// Guide: "Fault Tolerance → Chaos Engineering" (failure injection).
// Fault injection in an HTTP handler, asked for by a request header: the
// request is aborted with 503.
func ExampleInjector_Middleware() {
	chaos, _ := fault.NewInjector(fault.Options{HeaderControl: true})
	srv := httptest.NewServer(chaos.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "ok")
	})))
	defer srv.Close()
	req, _ := http.NewRequest("GET", srv.URL, nil)
	req.Header.Set(fault.HeaderAbort, "503")
	resp, err := srv.Client().Do(req)
	if err != nil {
		panic(err)
	}
	resp.Body.Close()
	fmt.Println(resp.StatusCode)
	// Output: 503
}
