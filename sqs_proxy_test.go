package kombu_test

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// sqsProxy is a reverse proxy in front of the SQS endpoint ep that lets intercept see each
// request first, by the operation named in its X-Amz-Target header, with its JSON body:
// intercept answers the request itself (and returns true), or lets it through, having
// possibly waited. It returns the proxy's endpoint.
func sqsProxy(t *testing.T, ep string, intercept func(op string, body []byte, w http.ResponseWriter) bool) string {
	t.Helper()
	target, err := url.Parse(ep)
	require.NoError(t, err)
	rp := httputil.NewSingleHostReverseProxy(target)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		op := r.Header.Get("X-Amz-Target")
		op = op[strings.LastIndexByte(op, '.')+1:]
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		if !intercept(op, body, w) {
			rp.ServeHTTP(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}
