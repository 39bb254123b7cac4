package kombu

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestApplyTransportOptionsKeepsBase: the options apply on top of a base Config, as
// ParseCeleryBroker applies them on the broker URL's.
func TestApplyTransportOptionsKeepsBase(t *testing.T) {
	base := Config{Region: "ap-south-1", AccessKeyID: "AKIDBASE", SecretAccessKey: "s", EndpointURL: "http://localhost:9324", StsTokenTimeout: 2000 * time.Second}
	o, err := applyTransportOptions(base, map[string]any{"queue_name_prefix": "x-", "sts_token_buffer_time": 1500})
	require.NoError(t, err, "the buffer is checked against the base's StsTokenTimeout")
	require.Equal(t, "ap-south-1", o.Region)
	require.Equal(t, "AKIDBASE", o.AccessKeyID)
	require.Equal(t, "http://localhost:9324", o.EndpointURL)
	require.Equal(t, "x-", o.QueueNamePrefix)
	require.Equal(t, 1500*time.Second, o.StsTokenBufferTime)

	// client-config cannot reshape an HTTPClient given in the base.
	base.HTTPClient = &http.Client{}
	_, err = applyTransportOptions(base, map[string]any{"client-config": map[string]any{"connect_timeout": 3}})
	require.ErrorContains(t, err, "HTTPClient")
	o, err = applyTransportOptions(base, map[string]any{"client-config": map[string]any{"read_timeout": 3}})
	require.NoError(t, err)
	require.Same(t, base.HTTPClient, o.HTTPClient)
	require.Equal(t, 3*time.Second, o.RequestTimeout)

	o, err = applyTransportOptions(Config{}, map[string]any{"client-config": map[string]any{"max_pool_connections": 50}})
	require.NoError(t, err)
	require.Equal(t, 50, o.HTTPClient.Transport.(*http.Transport).MaxIdleConnsPerHost)
}
