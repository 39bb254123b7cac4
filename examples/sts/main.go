// Command sts signs every SQS request with credentials from STS AssumeRole, as Kombu's
// `sts_role_arn` transport option does.
//
//	go run ./examples/sts                                   # starts moto as the local STS
//	go run ./examples/sts -sts-endpoint http://127.0.0.1:5000
//
// ElasticMQ has no STS, so locally the role is assumed from moto (`moto_server`, installed
// in the project's virtualenv by `make venv`): without -sts-endpoint the program starts
// .cache/venv/bin/moto_server on a free port and stops it at the end. Against AWS, leave
// EndpointURL and StsEndpointURL empty and give a real role ARN.
//
// The program publishes a message and receives it back, and shows that the SQS requests were
// signed with the temporary credentials (access key ids starting with ASIA) rather than the
// base ones.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	kombu "github.com/watermill-kombu/watermill-kombu"
)

func main() {
	endpoint := flag.String("endpoint", "http://127.0.0.1:9324", "SQS endpoint (ElasticMQ)")
	stsEndpoint := flag.String("sts-endpoint", "", "STS endpoint; empty starts the virtualenv's moto_server")
	roleARN := flag.String("role-arn", "arn:aws:iam::123456789012:role/example-celery-consumer", "role to assume")
	timeout := flag.Duration("timeout", 30*time.Second, "give up after this long")
	flag.Parse()
	if err := run(*endpoint, *stsEndpoint, *roleARN, *timeout); err != nil {
		fmt.Fprintln(os.Stderr, "sts:", err)
		os.Exit(1)
	}
}

func run(endpoint, stsEndpoint, roleARN string, timeout time.Duration) error {
	// Ctrl-C or SIGTERM stops the program cleanly, stopping the processes it started.
	ctx, stopSignals := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stopSignals()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	if stsEndpoint == "" {
		ep, stop, err := startMoto(ctx)
		if err != nil {
			return err
		}
		defer stop()
		stsEndpoint = ep
		fmt.Println("started moto as STS on", ep)
	}

	signer := &keyRecorder{host: strings.TrimPrefix(strings.TrimPrefix(endpoint, "http://"), "https://")}
	cfg := kombu.Config{
		Region:      "us-east-1",
		EndpointURL: endpoint,
		// The base credentials only call STS.
		AccessKeyID: "base-key", SecretAccessKey: "base-secret",
		StsRoleArn:      roleARN,
		StsEndpointURL:  stsEndpoint,
		StsTokenTimeout: 15 * time.Minute,
		HTTPClient:      &http.Client{Transport: signer},
	}
	pub, err := kombu.NewPublisher(kombu.PublisherConfig{Config: cfg}, nil)
	if err != nil {
		return err
	}
	defer pub.Close()
	sub, err := kombu.NewSubscriber(kombu.SubscriberConfig{Config: cfg, WaitTimeSeconds: 1}, nil)
	if err != nil {
		return err
	}
	defer sub.Close()

	const queue = "example-sts"
	msgs, err := sub.Subscribe(ctx, queue)
	if err != nil {
		return err
	}
	sent := message.NewMessage(watermill.NewUUID(), []byte(`{"hello": "from an assumed role"}`))
	sent.SetContext(ctx)
	if err := pub.Publish(queue, sent); err != nil {
		return err
	}
	for received := false; !received; {
		select {
		case got := <-msgs:
			got.Ack()
			received = got.UUID == sent.UUID // else one left over from an earlier run
			fmt.Printf("received %s: %s\n", got.UUID, got.Payload)
		case <-ctx.Done():
			return errors.New("timed out waiting for the message")
		}
	}

	keys := signer.keys()
	fmt.Printf("SQS requests were signed with %d access key id(s) (the publisher and the subscriber each assume the role):\n", len(keys))
	for _, k := range keys {
		fmt.Printf("  %s… (%d characters)\n", k[:4], len(k))
	}
	for _, k := range keys {
		if !strings.HasPrefix(k, "ASIA") && !strings.HasPrefix(k, "FSIA") {
			return fmt.Errorf("an SQS request was not signed with temporary credentials")
		}
	}
	fmt.Println("all of them temporary credentials from AssumeRole of", roleARN)
	return nil
}

// keyRecorder notes the access key id of every request to host.
type keyRecorder struct {
	host string
	mu   sync.Mutex
	seen map[string]bool
}

var credentialRE = regexp.MustCompile(`Credential=([A-Z0-9]+)/`)

func (r *keyRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Host == r.host {
		if m := credentialRE.FindStringSubmatch(req.Header.Get("Authorization")); m != nil {
			r.mu.Lock()
			if r.seen == nil {
				r.seen = map[string]bool{}
			}
			r.seen[m[1]] = true
			r.mu.Unlock()
		}
	}
	return http.DefaultTransport.RoundTrip(req)
}

func (r *keyRecorder) keys() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for k := range r.seen {
		out = append(out, k)
	}
	return out
}

// startMoto starts the virtualenv's moto_server on a free port and returns its endpoint.
func startMoto(ctx context.Context) (string, func(), error) {
	_, file, _, _ := runtime.Caller(0)
	bin := filepath.Join(filepath.Dir(file), "..", "..", ".cache", "venv", "bin", "moto_server")
	if _, err := os.Stat(bin); err != nil {
		return "", nil, fmt.Errorf("no moto_server at %s: run `make venv`, or pass -sts-endpoint", filepath.Clean(bin))
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	cmd := exec.Command(bin, "-H", "127.0.0.1", "-p", strconv.Itoa(port))
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	stop := func() { _ = cmd.Process.Kill(); <-exited }
	endpoint := "http://127.0.0.1:" + strconv.Itoa(port)
	for {
		resp, err := http.Get(endpoint + "/moto-api/")
		if err == nil {
			_ = resp.Body.Close()
			return endpoint, stop, nil
		}
		select {
		case <-exited:
			return "", nil, errors.New("moto_server exited")
		case <-ctx.Done():
			stop()
			return "", nil, fmt.Errorf("moto_server did not answer on %s", endpoint)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
