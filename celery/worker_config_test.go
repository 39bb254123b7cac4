package celery_test

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	kombu "github.com/watermill-kombu/watermill-kombu"
	"github.com/watermill-kombu/watermill-kombu/celery"
)

// TestWorkerConfigValidate: NewWorker reports each invalid field as a *kombu.ConfigError
// naming it, like the Publisher and Subscriber configs.
func TestWorkerConfigValidate(t *testing.T) {
	_, err := celery.NewWorker(celery.WorkerConfig{
		MaxETAWait: -time.Second,
		TaskQueues: map[string]string{"proj.[": "q", "proj.*": ""},
	}, nil)
	require.Error(t, err)
	assert.ErrorIs(t, err, kombu.ErrInvalidConfig)
	var fields []string
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		var ce *kombu.ConfigError
		require.True(t, errors.As(e, &ce), "%v is not a ConfigError", e)
		fields = append(fields, ce.Field)
	}
	assert.Equal(t, []string{"WorkerConfig.Publisher", "WorkerConfig.MaxETAWait",
		"WorkerConfig.TaskQueues[proj.*]", "WorkerConfig.TaskQueues[proj.[]"}, fields)

	w, err := celery.NewWorker(celery.WorkerConfig{Publisher: &sentMessages{}}, nil)
	require.NoError(t, err)
	assert.NotNil(t, w)
}
