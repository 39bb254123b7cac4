package main

import (
	"bytes"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
)

// countingProxy is a reverse proxy in front of the broker that counts SQS requests by action, for
// the clients that do not count their own (Kombu and Celery).
type countingProxy struct {
	mu     sync.Mutex
	counts map[string]int64
	srv    *http.Server
	URL    string
}

func startProxy(backend string) (*countingProxy, error) {
	target, err := url.Parse(backend)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &countingProxy{counts: map[string]int64{}, URL: "http://" + ln.Addr().String()}
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.Transport = &http.Transport{MaxIdleConnsPerHost: 64}
	// Clients closing idle long polls at exit are expected.
	rp.ErrorLog = log.New(io.Discard, "", 0)
	p.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.count(r)
		rp.ServeHTTP(w, r)
	})}
	go func() { _ = p.srv.Serve(ln) }()
	return p, nil
}

// count finds the action: the X-Amz-Target header of the JSON protocol, else the Action
// parameter of the query protocol.
func (p *countingProxy) count(r *http.Request) {
	action := r.Header.Get("X-Amz-Target")
	if i := strings.LastIndexByte(action, '.'); i >= 0 {
		action = action[i+1:]
	}
	if action == "" {
		action = r.URL.Query().Get("Action")
	}
	if action == "" && r.Body != nil {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		if v, err := url.ParseQuery(string(body)); err == nil {
			action = v.Get("Action")
		}
	}
	if action == "" {
		action = "other"
	}
	p.mu.Lock()
	p.counts[action]++
	p.mu.Unlock()
}

// total is the number of requests so far.
func (p *countingProxy) total() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	var t int64
	for _, v := range p.counts {
		t += v
	}
	return t
}

func (p *countingProxy) close() { _ = p.srv.Close() }
