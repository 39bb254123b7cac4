package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"time"

	"github.com/ThreeDotsLabs/watermill"

	kombu "github.com/watermill-kombu/watermill-kombu"
	"github.com/watermill-kombu/watermill-kombu/celery"
)

func sendTaskCmd(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("send-task", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var conn connFlags
	conn.register(fs)
	queue := fs.String("queue", "celery", "queue the Celery worker consumes")
	task := fs.String("task", "", "registered task name, e.g. proj.tasks.add (required)")
	argsJSON := fs.String("args", "[]", "positional arguments as a JSON array")
	kwargsJSON := fs.String("kwargs", "{}", "keyword arguments as a JSON object")
	countdown := fs.Float64("countdown", 0, "run the task no earlier than this many seconds from now")
	protocol := fs.Int("protocol", 2, "Celery task message protocol, 2 or 1")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: watermill-kombu send-task --task NAME [flags]\n\nEnqueues a Celery task as apply_async would and prints its id.")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *task == "" {
		return badUsage("--task is required")
	}
	if *protocol != 1 && *protocol != 2 {
		return badUsage("--protocol must be 1 or 2, not %d", *protocol)
	}
	// Beyond time.Duration's range (some 292 years) the conversion would wrap to a past eta.
	if *countdown < 0 || math.IsNaN(*countdown) || *countdown > float64(math.MaxInt64)/float64(time.Second) {
		return badUsage("--countdown must be a number of seconds from 0 to %.0f", float64(math.MaxInt64)/float64(time.Second))
	}
	var taskArgs []any
	if err := decodeJSONFlag("--args", *argsJSON, &taskArgs); err != nil {
		return err
	}
	var taskKwargs map[string]any
	if err := decodeJSONFlag("--kwargs", *kwargsJSON, &taskKwargs); err != nil {
		return err
	}
	cfg, err := conn.config()
	if err != nil {
		return err
	}

	opts := []celery.TaskOption{celery.WithProtocol(*protocol)}
	if *countdown > 0 {
		opts = append(opts, celery.WithCountdown(time.Duration(*countdown*float64(time.Second))))
	}
	msg, err := celery.NewTask(*task, taskArgs, taskKwargs, opts...)
	if err != nil {
		return err
	}
	pub, err := kombu.NewPublisher(kombu.PublisherConfig{Config: cfg}, watermill.NopLogger{})
	if err != nil {
		return err
	}
	defer pub.Close()
	if err := pub.Publish(*queue, msg); err != nil {
		return err
	}
	_, err = fmt.Fprintln(stdout, msg.UUID)
	return err
}

// decodeJSONFlag decodes a JSON flag value, keeping numbers exact.
func decodeJSONFlag(name, value string, dst any) error {
	dec := json.NewDecoder(bytes.NewReader([]byte(value)))
	dec.UseNumber()
	if err := dec.Decode(dst); err != nil {
		return badUsage("%s: invalid JSON for its type: %v", name, err)
	}
	// Token, not More: More reports no more values before a stray ']' or '}'.
	if _, err := dec.Token(); err != io.EOF {
		return badUsage("%s: trailing data after the JSON value", name)
	}
	return nil
}
