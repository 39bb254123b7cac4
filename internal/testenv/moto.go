package testenv

import (
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sns"
)

// EnvMotoEndpoint is the moto server (SQS and SNS) that `make test` starts
// (internal/moto/moto.sh start).
const EnvMotoEndpoint = "KOMBU_TEST_MOTO_ENDPOINT"

// DefaultMotoEndpoint is used when KOMBU_TEST_MOTO_ENDPOINT is unset.
const DefaultMotoEndpoint = "http://127.0.0.1:9400"

// MotoEndpoint returns the endpoint of the moto server, the second SQS
// implementation of the tests and their SNS, and fails the test if it does
// not answer (skipped under -short, unless CI=true, like every service).
func MotoEndpoint(t testing.TB) string {
	t.Helper()
	NeedsServices(t)
	ep := strings.TrimRight(os.Getenv(EnvMotoEndpoint), "/")
	if ep == "" {
		ep = DefaultMotoEndpoint
	}
	p, _ := probes.LoadOrStore(ep, &probe{})
	pr := p.(*probe)
	pr.once.Do(func() { pr.err = waitMoto(ep, 10*time.Second) })
	if pr.err != nil {
		t.Fatalf("testenv: moto endpoint %s (%s) is not reachable: %v; run `make moto-up` (or `make test`)", ep, EnvMotoEndpoint, pr.err)
	}
	return ep
}

// waitMoto polls moto's own API until it answers or the timeout passes.
func waitMoto(ep string, timeout time.Duration) error {
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(timeout)
	for {
		resp, err := client.Get(ep + "/moto-api/")
		if err == nil {
			resp.Body.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// SNSClient returns an SNS client for a local endpoint (see AWSConfig).
func SNSClient(t testing.TB, endpoint string) *sns.Client {
	t.Helper()
	return sns.NewFromConfig(AWSConfig(t, endpoint))
}
