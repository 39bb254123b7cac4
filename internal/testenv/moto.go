package testenv

import (
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sns"
)

// EnvMotoEndpoint is the moto server (SQS and SNS) started by `make test`
// (internal/moto/moto.sh start).
const EnvMotoEndpoint = "KOMBU_TEST_MOTO_ENDPOINT"

// DefaultMotoEndpoint is used when KOMBU_TEST_MOTO_ENDPOINT is unset.
const DefaultMotoEndpoint = "http://127.0.0.1:9400"

// MotoEndpoint returns the endpoint of the moto server, the second SQS
// implementation of the tests and their SNS. The test is skipped under
// -short; otherwise a server that does not answer fails it (a skip would
// let CI pass without the tests having run), unless KOMBU_TEST_MOTO_ENDPOINT
// is unset and CI is not true, where it is skipped with a hint.
func MotoEndpoint(t testing.TB) string {
	t.Helper()
	if testing.Short() {
		t.Skip("needs the moto server; skipped with -short")
	}
	ep := strings.TrimRight(os.Getenv(EnvMotoEndpoint), "/")
	explicit := ep != ""
	if !explicit {
		ep = DefaultMotoEndpoint
	}
	if _, ok := reachable.Load(ep); ok {
		return ep
	}
	if err := waitMoto(ep, 10*time.Second); err != nil {
		msg := "testenv: moto endpoint " + ep + " (" + EnvMotoEndpoint + ") is not reachable: " + err.Error() +
			"; run `internal/moto/moto.sh start` (or `make test`)"
		if explicit || os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	reachable.Store(ep, struct{}{})
	return ep
}

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
