// Package golden reads the golden vectors of testdata/golden: SQS bodies written by Kombu
// and Celery with what Kombu and Celery themselves decode from them (see
// interop/gen_golden.py). Tests of the envelope codec and of the task protocol share them.
package golden

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/watermill-kombu/watermill-kombu/internal/testenv"
)

// Vector is one testdata/golden/<name>.json, written by interop/gen_golden.py from what
// Kombu and Celery themselves decode.
type Vector struct {
	Name       string `json:"name"`
	Queue      string `json:"queue"`
	SQSMessage struct {
		MessageID     string `json:"MessageId"`
		ReceiptHandle string `json:"ReceiptHandle"`
	} `json:"sqs_message"`
	SendParams      map[string]any             `json:"send_params"`
	OuterBase64     bool                       `json:"outer_base64"`
	Raw             bool                       `json:"raw"`
	Envelope        json.RawMessage            `json:"envelope"`
	EnvelopeKeys    []string                   `json:"envelope_keys"`
	PropertiesKeys  []string                   `json:"properties_keys"`
	HeadersKeys     []string                   `json:"headers_keys"`
	ContentType     *string                    `json:"content_type"`
	ContentEncoding *string                    `json:"content_encoding"`
	Headers         map[string]json.RawMessage `json:"headers"`
	Properties      map[string]json.RawMessage `json:"properties"`
	PayloadBase64   string                     `json:"payload_base64"`
	Decoded         json.RawMessage            `json:"decoded"`
	Error           string                     `json:"error"`
	Task            *struct {
		Protocol      int                        `json:"protocol"`
		Headers       map[string]json.RawMessage `json:"headers"`
		Args          json.RawMessage            `json:"args"`
		Kwargs        json.RawMessage            `json:"kwargs"`
		Embed         map[string]json.RawMessage `json:"embed"`
		UTC           *bool                      `json:"utc"`
		CorrelationID string                     `json:"correlation_id"`
		ReplyTo       string                     `json:"reply_to"`
	} `json:"task"`

	// Body is the SQS body, the .sqs file.
	Body string `json:"-"`
}

// Load reads every vector of testdata/golden.
func Load(t testing.TB) []Vector {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(testenv.RepoRoot(t), "testdata", "golden", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden vectors: %v", err)
	}
	var out []Vector
	for _, f := range files {
		var v Vector
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		body, err := os.ReadFile(strings.TrimSuffix(f, ".json") + ".sqs")
		if err != nil {
			t.Fatal(err)
		}
		v.Body = string(body)
		out = append(out, v)
	}
	return out
}

// Get returns the vector called name.
func Get(t testing.TB, name string) Vector {
	for _, v := range Load(t) {
		if v.Name == name {
			return v
		}
	}
	t.Fatalf("no golden vector %s", name)
	return Vector{}
}

// SQS returns the SQS message that carried the vector.
func (v Vector) SQS() *types.Message {
	return &types.Message{
		Body:          aws.String(v.Body),
		MessageId:     aws.String(v.SQSMessage.MessageID),
		ReceiptHandle: aws.String(v.SQSMessage.ReceiptHandle),
	}
}

// JSONEqual compares two JSON texts as values.
func JSONEqual(t testing.TB, a, b []byte) bool {
	t.Helper()
	var va, vb any
	if err := json.Unmarshal(a, &va); err != nil {
		t.Fatalf("not JSON %q: %v", a, err)
	}
	if err := json.Unmarshal(b, &vb); err != nil {
		t.Fatalf("not JSON %q: %v", b, err)
	}
	return reflect.DeepEqual(va, vb)
}
