package kombu

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestConfigValidateNamesFields(t *testing.T) {
	c := SubscriberConfig{
		Config: Config{
			VisibilityTimeout: 50000 * time.Second,
			StsTokenTimeout:   100 * time.Second,
			AccessKeyID:       "AKIDSECRETLOOKING",
			PredefinedQueues: map[string]PredefinedQueue{
				"q.fifo": {URL: "https://sqs.us-east-1.amazonaws.com/1/q"},
				"other":  {},
			},
		},
		WaitTimeSeconds: 21,
		PrefetchCount:   -1,
		BackoffPolicy:   map[int]int{0: 5},
	}
	err := c.Validate()
	if err == nil {
		t.Fatal("expected errors")
	}
	if !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("errors.Is(err, ErrInvalidConfig) is false for %v", err)
	}
	for _, field := range []string{"VisibilityTimeout", "StsTokenTimeout", "AccessKeyID/SecretAccessKey", "PredefinedQueues[q.fifo].URL",
		"PredefinedQueues[other].URL", "WaitTimeSeconds", "PrefetchCount", "BackoffPolicy", "between 0 and 20"} {
		if !strings.Contains(err.Error(), field) {
			t.Errorf("error does not name %q:\n%v", field, err)
		}
	}
	if strings.Contains(err.Error(), "AKIDSECRETLOOKING") {
		t.Error("error shows a credential")
	}
}

func TestConfigStringHidesCredentials(t *testing.T) {
	c := Config{
		AccessKeyID: "AKIAEXAMPLEKEY", SecretAccessKey: "very/secret+key", SessionToken: "tok3n",
		PredefinedQueues: map[string]PredefinedQueue{"q": {URL: "http://x/1/q", AccessKeyID: "AKIAQUEUEKEY", SecretAccessKey: "queue-secret"}},
	}
	for _, s := range []string{c.String(), fmt.Sprintf("%v %+v %#v %s", c, c, c, c), fmt.Sprintf("%v %#v", c.PredefinedQueues["q"], c.PredefinedQueues["q"])} {
		for _, secret := range []string{"AKIAEXAMPLEKEY", "very/secret+key", "tok3n", "AKIAQUEUEKEY", "queue-secret"} {
			if strings.Contains(s, secret) {
				t.Errorf("%q appears in %q", secret, s)
			}
		}
	}
}

func TestConcurrencyDefaultsAndLimits(t *testing.T) {
	for _, c := range []struct{ concurrency, prefetch int }{{0, 30}, {1, 20}, {10, 20}, {16, 30}, {26, 40}, {64, 80}, {1000, 1000}} {
		cfg := SubscriberConfig{Concurrency: c.concurrency}
		cfg.setDefaults()
		if c.concurrency == 0 && cfg.Concurrency != defaultConcurrency {
			t.Errorf("default Concurrency %d, want %d", cfg.Concurrency, defaultConcurrency)
		}
		if cfg.PrefetchCount != c.prefetch {
			t.Errorf("Concurrency %d: default PrefetchCount %d, want %d", cfg.Concurrency, cfg.PrefetchCount, c.prefetch)
		}
	}
	err := SubscriberConfig{Concurrency: 1001, PrefetchCount: 10, Unmarshaler: EnvelopeMarshaler{}}.Validate()
	if err == nil || !strings.Contains(err.Error(), "Concurrency") {
		t.Errorf("Concurrency 1001 accepted or not named: %v", err)
	}
	err = PublisherConfig{CoalesceLinger: 2 * time.Second, Marshaler: EnvelopeMarshaler{}}.Validate()
	if err == nil || !strings.Contains(err.Error(), "CoalesceLinger") {
		t.Errorf("CoalesceLinger 2 s accepted or not named: %v", err)
	}
}

// TestZeroConfigValidates: a zero field means its default, so Validate accepts a config
// whose fields are all left zero, before the constructor fills the defaults in.
func TestZeroConfigValidates(t *testing.T) {
	if err := (Config{}).Validate(); err != nil {
		t.Errorf("Config{}: %v", err)
	}
	if err := (PublisherConfig{}).Validate(); err != nil {
		t.Errorf("PublisherConfig{}: %v", err)
	}
	if err := (SubscriberConfig{}).Validate(); err != nil {
		t.Errorf("SubscriberConfig{}: %v", err)
	}
	// A zero StsTokenTimeout is the default of 900 s, which the buffer must stay below.
	err := Config{StsTokenBufferTime: 1000 * time.Second}.Validate()
	if err == nil || !strings.Contains(err.Error(), "StsTokenBufferTime") {
		t.Errorf("StsTokenBufferTime 1000 s with the default StsTokenTimeout accepted or not named: %v", err)
	}
	err = SubscriberConfig{PrefetchCount: -1}.Validate()
	if err == nil || !strings.Contains(err.Error(), "PrefetchCount") {
		t.Errorf("PrefetchCount -1 accepted or not named: %v", err)
	}
}

// An endpoint URL refused by Validate is quoted without the credentials written into it.
func TestConfigValidateHidesEndpointCredentials(t *testing.T) {
	for _, ep := range []string{"sqs://AKIAKEY:s3cret@localhost:9324", "ftp://AKIAKEY:s3cret@host/path?x=1", "tcp://AKIAKEY:s3cret@h"} {
		err := Config{EndpointURL: ep}.Validate()
		if err == nil || !strings.Contains(err.Error(), "EndpointURL") {
			t.Fatalf("Validate(%q) = %v, want an error naming EndpointURL", ep, err)
		}
		if strings.Contains(err.Error(), "s3cret") || strings.Contains(err.Error(), "AKIAKEY") {
			t.Errorf("Validate(%q) = %v: the credentials appear in the error", ep, err)
		}
	}
}
