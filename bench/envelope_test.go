package main

import (
	"testing"

	kombu "github.com/watermill-kombu/watermill-kombu"
)

// The envelope figures of BENCHMARKS.md as ordinary benchmarks:
//
//	cd bench && go test -run '^$' -bench Envelope -benchmem

func BenchmarkEnvelopeEncodeDecode(b *testing.B) {
	msg, err := typicalTask()
	if err != nil {
		b.Fatal(err)
	}
	env, _, err := envelopeOf(msg)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	var dec kombu.Envelope
	for i := 0; i < b.N; i++ {
		if err := dec.Decode(env.Encode()); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEnvelopeMarshalUnmarshal(b *testing.B) {
	msg, err := typicalTask()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if err := marshalRoundTrip(msg); err != nil {
			b.Fatal(err)
		}
	}
}

func TestEnvelopeRoundTrip(t *testing.T) {
	msg, err := typicalTask()
	if err != nil {
		t.Fatal(err)
	}
	env, body, err := envelopeOf(msg)
	if err != nil {
		t.Fatal(err)
	}
	if got := env.Encode(); got != body {
		t.Fatalf("re-encoded envelope differs from the marshalled body")
	}
	if err := marshalRoundTrip(msg); err != nil {
		t.Fatal(err)
	}
}
