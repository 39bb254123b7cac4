package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/watermill-kombu/watermill-kombu/internal/testenv"
)

// runCLI runs the command in-process and returns its exit status, stdout and stderr.
func runCLI(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(args, strings.NewReader(stdin), &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

func golden(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "testdata", "golden", name))
	require.NoError(t, err)
	return string(b)
}

func TestDecodeGolden(t *testing.T) {
	tests := []struct {
		file     string
		protocol int
		task     string
		args     string
		kwargs   string
		eta      bool
	}{
		{"celery_v2_add.sqs", 2, "proj.tasks.add", "[2, 3]", "{}", false},
		{"celery_v1_add.sqs", 1, "proj.tasks.add", "[2, 3]", "{}", false},
		{"celery_v2_eta_expires.sqs", 2, "proj.tasks.add", "[6, 7]", "{}", true},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			code, out, errOut := runCLI(t, golden(t, tt.file), "decode")
			require.Equal(t, 0, code, errOut)
			assert.Empty(t, errOut)
			var v messageView
			require.NoError(t, json.Unmarshal([]byte(out), &v), out)
			require.NotNil(t, v.Task, out)
			assert.Equal(t, tt.task, v.Task.Name)
			assert.Equal(t, tt.protocol, v.Task.Protocol)
			assert.JSONEq(t, tt.args, string(v.Task.Args))
			assert.JSONEq(t, tt.kwargs, string(v.Task.Kwargs))
			assert.Equal(t, tt.eta, v.Task.ETA != nil)
			assert.Equal(t, "application/json", v.ContentType)
			assert.Equal(t, "celery", v.Properties["delivery_info"].(map[string]any)["routing_key"])
			assert.Contains(t, out, "\n  \"task\": {\n", "indented JSON")
		})
	}
}

func TestDecodePlainKombu(t *testing.T) {
	code, out, errOut := runCLI(t, golden(t, "kombu_plain.sqs"), "decode")
	require.Equal(t, 0, code, errOut)
	var v messageView
	require.NoError(t, json.Unmarshal([]byte(out), &v))
	assert.Nil(t, v.Task)
	assert.NotEmpty(t, v.Payload)
}

func TestDecodeBadInput(t *testing.T) {
	v2 := golden(t, "celery_v2_add.sqs")
	tests := map[string]string{
		"empty":          "",
		"blank":          " \n\t",
		"not base64":     "hello world",
		"truncated":      v2[:len(v2)/2],
		"json array":     `[1, 2, 3]`,
		"bad properties": `{"properties": "nope", "body": ""}`,
		"body not text":  `{"properties": {}, "body": 5}`,
		"bad json body":  `{"properties": {"body_encoding": "base64"}, "body": "eyJh", "content-type": "application/json"}`,
		"pickle":         golden(t, "kombu_pickle.sqs"),
		"not an object":  `"just a string"`,
	}
	for name, in := range tests {
		t.Run(name, func(t *testing.T) {
			code, out, errOut := runCLI(t, in, "decode")
			assert.Equal(t, 1, code)
			assert.Empty(t, out)
			assert.True(t, strings.HasPrefix(errOut, "watermill-kombu decode: "), errOut)
			assert.Equal(t, 1, strings.Count(errOut, "\n"), "one line: %q", errOut)
		})
	}
}

func TestUsageErrors(t *testing.T) {
	code, _, errOut := runCLI(t, "")
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, "usage:")
	code, _, _ = runCLI(t, "", "frobnicate")
	assert.Equal(t, 2, code)
	code, _, _ = runCLI(t, "", "decode", "--nope")
	assert.Equal(t, 2, code)

	// Flag values the command refuses are usage errors too (status 2), explained on one line.
	for _, args := range [][]string{
		{"send-task", "--queue", "q"},
		{"send-task", "--task", "t", "--args", "{}"},
		{"send-task", "--task", "t", "--kwargs", "[1]"},
		{"send-task", "--task", "t", "--args", "[1]]"},
		{"send-task", "--task", "t", "--kwargs", "{}}"},
		{"send-task", "--task", "t", "--args", "[1] 2"},
		{"send-task", "--task", "t", "--protocol", "3"},
		{"send-task", "--task", "t", "--countdown", "-1"},
		{"send-task", "--task", "t", "--countdown", "1e10"},
		{"tail", "--count", "-1"},
	} {
		code, out, errOut := runCLI(t, "", args...)
		assert.Equal(t, 2, code, "%v", args)
		assert.Empty(t, out)
		assert.Equal(t, 1, strings.Count(errOut, "\n"), "%v: %q", args, errOut)
	}
}

// TestHelpHidesBrokerSecret: the broker URL from $CELERY_BROKER_URL, credentials included, is
// not printed as the flag's default in help and usage texts.
func TestHelpHidesBrokerSecret(t *testing.T) {
	t.Setenv("CELERY_BROKER_URL", "sqs://AKIAEXAMPLE:SuperSecret123@127.0.0.1:1")
	for _, args := range [][]string{{"send-task", "-h"}, {"tail", "--bogus"}} {
		_, out, errOut := runCLI(t, "", args...)
		assert.NotContains(t, out+errOut, "SuperSecret123", "%v", args)
		assert.Contains(t, errOut, "CELERY_BROKER_URL", "%v: the help names the variable", args)
	}
}

// TestSendTaskTail enqueues tasks with send-task, reads them back with tail (returned to the
// queue), then with tail --ack (deleted).
func TestSendTaskTail(t *testing.T) {
	endpoint := testenv.SQSEndpoint(t)
	queue := testenv.UniqueName("cli-send-tail")
	conn := []string{"--endpoint", endpoint, "--broker", "sqs://test:test@", "--region", "us-east-1", "--queue", queue}

	sent := map[string]int{}
	for _, protocol := range []string{"2", "1"} {
		args := append([]string{"send-task"}, conn...)
		args = append(args, "--task", "proj.add", "--args", `[2, 3, 18446744073709551617]`,
			"--kwargs", `{"name": "héllo ☃"}`, "--countdown", "30", "--protocol", protocol)
		code, out, errOut := runCLI(t, "", args...)
		require.Equal(t, 0, code, errOut)
		id := strings.TrimSpace(out)
		require.Len(t, id, 36, out)
		sent[id] = int(protocol[0] - '0')
	}

	tail := func(extra ...string) []messageView {
		t.Helper()
		args := append(append([]string{"tail"}, conn...), extra...)
		code, out, errOut := runCLI(t, "", args...)
		require.Equal(t, 0, code, errOut)
		var views []messageView
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			if line == "" {
				continue
			}
			var v messageView
			require.NoError(t, json.Unmarshal([]byte(line), &v), line)
			views = append(views, v)
		}
		return views
	}
	check := func(views []messageView) {
		t.Helper()
		require.Len(t, views, 2)
		for _, v := range views {
			require.NotNil(t, v.Task)
			protocol, ok := sent[v.Task.ID]
			require.True(t, ok, "unknown task id %s", v.Task.ID)
			assert.Equal(t, protocol, v.Task.Protocol)
			assert.Equal(t, "proj.add", v.Task.Name)
			assert.JSONEq(t, `[2, 3, 18446744073709551617]`, string(v.Task.Args))
			assert.JSONEq(t, `{"name": "héllo ☃"}`, string(v.Task.Kwargs))
			require.NotNil(t, v.Task.ETA, "countdown sets the eta")
			assert.WithinDuration(t, time.Now().Add(30*time.Second), *v.Task.ETA, 10*time.Second)
			assert.NotEmpty(t, v.SQSMessageID)
		}
	}

	check(tail("--count", "2", "--idle", "10s"))
	// Not acked: still there.
	check(tail("--ack", "--count", "2", "--idle", "10s"))
	// Acked: gone.
	assert.Empty(t, tail("--idle", "2s"))
}
