// Package faultproxy is an HTTP reverse proxy for tests that sits in front of an SQS server
// (ElasticMQ) and injects faults into a share of the requests: throttling errors, HTTP 500s,
// slow responses, dropped connections, and batch calls of which some entries fail.
//
// It understands SQS's JSON protocol (the X-Amz-Target header), which the AWS SDK for Go v2
// speaks. Faults are answered the way SQS answers them, so the SDK classifies them as it would
// in production: a throttled request gets HTTP 400 with a ThrottlingException body (which the
// SDK retries as a throttle), a server error HTTP 500 with an InternalError body.
package faultproxy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Config says which share (0 to 1) of the requests gets which fault. The shares are drawn in
// this order and add up at most to 1.
type Config struct {
	// Target is the upstream SQS endpoint, e.g. http://127.0.0.1:9324.
	Target string
	// Throttle answers HTTP 400 ThrottlingException without forwarding.
	Throttle float64
	// ServerError answers HTTP 500 InternalError without forwarding.
	ServerError float64
	// DropBefore closes the connection without forwarding; DropAfter forwards, then closes the
	// connection instead of answering (the request took effect, the client cannot know).
	DropBefore, DropAfter float64
	// Slow forwards after SlowDelay.
	Slow      float64
	SlowDelay time.Duration
	// PartialBatch is the share of SendMessageBatch and DeleteMessageBatch calls in which each
	// entry fails with probability PartialEntry: such entries are taken out of the forwarded
	// request and reported in the response's Failed list with SenderFault false.
	PartialBatch float64
	PartialEntry float64
	// Seed seeds the random draws (0: time-based).
	Seed int64
}

// Counts are what the proxy did, by fault.
type Counts struct {
	Requests, Throttled, ServerErrors, DroppedBefore, DroppedAfter, Slowed int
	// FailedEntries counts batch entries failed on purpose, by action; RetriedEntries how many of
	// them were seen again in a later request of the same action (same message body for
	// SendMessageBatch, same receipt handle for DeleteMessageBatch).
	FailedEntries, RetriedEntries map[string]int
}

// Proxy is a running fault-injecting proxy.
type Proxy struct {
	// URL is the proxy's endpoint, to use as the SQS endpoint.
	URL string

	cfg    Config
	srv    *http.Server
	ln     net.Listener
	client *http.Client

	mu      sync.Mutex
	rnd     *rand.Rand
	enabled bool
	silent  bool
	done    chan struct{}
	counts  Counts
	failed  map[string]bool // action + "\x00" + entry key of failed entries not yet retried
}

// Start listens on a free local port and serves until Close.
func Start(cfg Config) (*Proxy, error) {
	if cfg.Target == "" {
		return nil, fmt.Errorf("faultproxy: no target")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	seed := cfg.Seed
	if seed == 0 {
		seed = time.Now().UnixNano()
	}
	p := &Proxy{
		URL:     "http://" + ln.Addr().String(),
		cfg:     cfg,
		ln:      ln,
		client:  &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true}},
		rnd:     rand.New(rand.NewSource(seed)),
		enabled: true,
		counts:  Counts{FailedEntries: map[string]int{}, RetriedEntries: map[string]int{}},
		failed:  map[string]bool{},
		done:    make(chan struct{}),
	}
	p.srv = &http.Server{Handler: p, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = p.srv.Serve(ln) }()
	return p, nil
}

// Close stops the proxy and closes its connections.
func (p *Proxy) Close() error {
	p.mu.Lock()
	select {
	case <-p.done:
	default:
		close(p.done)
	}
	p.mu.Unlock()
	err := p.srv.Close()
	p.client.CloseIdleConnections()
	return err
}

// SetEnabled turns fault injection on or off; when off, every request is forwarded as is.
func (p *Proxy) SetEnabled(on bool) {
	p.mu.Lock()
	p.enabled = on
	p.mu.Unlock()
}

// SetSilent makes the proxy behave as a stuck endpoint: it accepts connections and reads
// requests but never answers them, until SetSilent(false) (for new requests) or Close.
func (p *Proxy) SetSilent(on bool) {
	p.mu.Lock()
	p.silent = on
	p.mu.Unlock()
}

// Counts returns a copy of the counters.
func (p *Proxy) Counts() Counts {
	p.mu.Lock()
	defer p.mu.Unlock()
	c := p.counts
	c.FailedEntries, c.RetriedEntries = map[string]int{}, map[string]int{}
	for k, v := range p.counts.FailedEntries {
		c.FailedEntries[k] = v
	}
	for k, v := range p.counts.RetriedEntries {
		c.RetriedEntries[k] = v
	}
	return c
}

type fault int

const (
	none fault = iota
	throttle
	serverError
	dropBefore
	dropAfter
	slow
)

func (p *Proxy) draw() (fault, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.counts.Requests++
	if !p.enabled {
		return none, false
	}
	x := p.rnd.Float64()
	f := none
	for _, c := range []struct {
		share float64
		f     fault
	}{{p.cfg.Throttle, throttle}, {p.cfg.ServerError, serverError}, {p.cfg.DropBefore, dropBefore}, {p.cfg.DropAfter, dropAfter}, {p.cfg.Slow, slow}} {
		if x < c.share {
			f = c.f
			break
		}
		x -= c.share
	}
	switch f {
	case throttle:
		p.counts.Throttled++
	case serverError:
		p.counts.ServerErrors++
	case dropBefore:
		p.counts.DroppedBefore++
	case dropAfter:
		p.counts.DroppedAfter++
	case slow:
		p.counts.Slowed++
	}
	return f, p.rnd.Float64() < p.cfg.PartialBatch
}

func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	action := strings.TrimPrefix(r.Header.Get("X-Amz-Target"), "AmazonSQS.")
	p.mu.Lock()
	silent := p.silent
	p.mu.Unlock()
	if silent {
		select {
		case <-r.Context().Done(): // the client gave up
		case <-p.done:
		}
		return
	}
	f, partial := p.draw()
	switch f {
	case throttle:
		writeError(w, http.StatusBadRequest, "ThrottlingException", "Rate exceeded")
		return
	case serverError:
		writeError(w, http.StatusInternalServerError, "InternalError", "injected server error")
		return
	case dropBefore:
		drop(w)
		return
	case slow:
		time.Sleep(p.cfg.SlowDelay)
	}

	var failed []json.RawMessage
	isBatch := action == "SendMessageBatch" || action == "DeleteMessageBatch"
	if isBatch {
		body, failed = p.rewriteBatch(action, body, partial)
	}
	var status int
	var header http.Header
	var respBody []byte
	if body == nil {
		// Every entry failed on purpose: answer without forwarding.
		status, header, respBody = http.StatusOK, http.Header{"Content-Type": {"application/x-amz-json-1.0"}}, []byte(`{"Successful":[]}`)
	} else {
		status, header, respBody, err = p.forward(r, body)
		if err != nil {
			writeError(w, http.StatusBadGateway, "InternalError", "upstream: "+err.Error())
			return
		}
	}
	if f == dropAfter {
		drop(w)
		return
	}
	if len(failed) > 0 && status == http.StatusOK {
		respBody = addFailed(respBody, failed)
	}
	for k, vs := range header {
		if k == "Content-Length" {
			continue
		}
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	w.Header().Set("Content-Length", fmt.Sprint(len(respBody)))
	w.WriteHeader(status)
	_, _ = w.Write(respBody)
}

func (p *Proxy) forward(r *http.Request, body []byte) (int, http.Header, []byte, error) {
	req, err := http.NewRequestWithContext(r.Context(), r.Method, strings.TrimRight(p.cfg.Target, "/")+r.URL.RequestURI(), bytes.NewReader(body))
	if err != nil {
		return 0, nil, nil, err
	}
	for k, vs := range r.Header {
		if k == "Content-Length" {
			continue
		}
		req.Header[k] = vs
	}
	req.ContentLength = int64(len(body))
	resp, err := p.client.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b, err
}

// rewriteBatch takes failing entries out of a batch request. It returns the request to
// forward (nil when no entry is left) and the Failed entries to report.
func (p *Proxy) rewriteBatch(action string, body []byte, partial bool) ([]byte, []json.RawMessage) {
	var req map[string]json.RawMessage
	if json.Unmarshal(body, &req) != nil {
		return body, nil
	}
	var entries []map[string]any
	if json.Unmarshal(req["Entries"], &entries) != nil {
		return body, nil
	}
	keyField := "MessageBody"
	if action == "DeleteMessageBatch" {
		keyField = "ReceiptHandle"
	}
	var keep []map[string]any
	var failed []json.RawMessage
	p.mu.Lock()
	for _, e := range entries {
		key := action + "\x00" + fmt.Sprint(e[keyField])
		if p.failed[key] {
			delete(p.failed, key)
			p.counts.RetriedEntries[action]++
		}
		if partial && p.enabled && p.rnd.Float64() < p.cfg.PartialEntry {
			p.failed[key] = true
			p.counts.FailedEntries[action]++
			f, _ := json.Marshal(map[string]any{"Id": e["Id"], "SenderFault": false, "Code": "InternalError", "Message": "injected entry failure"})
			failed = append(failed, f)
			continue
		}
		keep = append(keep, e)
	}
	p.mu.Unlock()
	if len(failed) == 0 {
		return body, nil
	}
	if len(keep) == 0 {
		return nil, failed
	}
	req["Entries"], _ = json.Marshal(keep)
	out, _ := json.Marshal(req)
	return out, failed
}

// addFailed appends entries to the Failed list of a batch response.
func addFailed(respBody []byte, failed []json.RawMessage) []byte {
	var resp map[string]json.RawMessage
	if json.Unmarshal(respBody, &resp) != nil {
		return respBody
	}
	var list []json.RawMessage
	_ = json.Unmarshal(resp["Failed"], &list)
	resp["Failed"], _ = json.Marshal(append(list, failed...))
	out, _ := json.Marshal(resp)
	return out
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	b, _ := json.Marshal(map[string]string{"__type": "com.amazonaws.sqs#" + code, "message": msg})
	w.Header().Set("Content-Type", "application/x-amz-json-1.0")
	w.Header().Set("x-amzn-RequestId", "faultproxy")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// drop closes the client's connection without an answer.
func drop(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic(http.ErrAbortHandler)
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		return
	}
	_ = conn.Close()
}
