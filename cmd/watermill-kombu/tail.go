package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"time"

	"github.com/ThreeDotsLabs/watermill"

	kombu "github.com/watermill-kombu/watermill-kombu"
)

func tailCmd(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("tail", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var conn connFlags
	conn.register(fs)
	queue := fs.String("queue", "celery", "queue to read")
	ack := fs.Bool("ack", false, "delete each message printed (default: return it to the queue)")
	count := fs.Int("count", 0, "exit after printing this many messages (0: no limit)")
	idle := fs.Duration("idle", 0, "exit when no new message came for this long (0: run until interrupted)")
	wait := fs.Int("wait", 1, "long-poll time of each receive, 0 to 20 seconds")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: watermill-kombu tail [flags]\n\nPrints the messages of a queue, one JSON document per line. Without --ack each\nmessage is returned to the queue at once and printed only the first time it is seen.")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *count < 0 || *idle < 0 {
		return badUsage("--count and --idle must not be negative")
	}
	cfg, err := conn.config()
	if err != nil {
		return err
	}
	subCfg := kombu.SubscriberConfig{
		Config:             cfg,
		WaitTimeSeconds:    *wait,
		DisableLongPolling: *wait == 0,
		PollingInterval:    100 * time.Millisecond,
		DisableETADeferral: true, // show tasks with a future eta too
		CloseTimeout:       10 * time.Second,
	}
	if !*ack {
		subCfg.PrefetchCount = 1 // hold back as few messages from other consumers as possible
	}
	sub, err := kombu.NewSubscriber(subCfg, watermill.NopLogger{})
	if err != nil {
		return err
	}
	defer sub.Close()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	msgs, err := sub.Subscribe(ctx, *queue)
	if err != nil {
		return err
	}

	seen := map[string]bool{}
	printed := 0
	var idleC <-chan time.Time
	var idleTimer *time.Timer
	if *idle > 0 {
		idleTimer = time.NewTimer(*idle)
		defer idleTimer.Stop()
		idleC = idleTimer.C
	}
	enc := json.NewEncoder(stdout)
	enc.SetEscapeHTML(false)
	for {
		select {
		case <-idleC:
			return nil
		case msg, ok := <-msgs:
			if !ok {
				return nil
			}
			id := msg.Metadata.Get(kombu.MetadataSQSMessageID)
			if seen[id] {
				msg.Nack()
				continue
			}
			seen[id] = true
			v, err := describe(msg)
			if err != nil {
				v = &messageView{SQSMessageID: id, DecodeError: err.Error()}
			}
			if err := enc.Encode(v); err != nil {
				msg.Nack()
				return err
			}
			if *ack {
				msg.Ack()
			} else {
				msg.Nack()
			}
			printed++
			if *count > 0 && printed >= *count {
				return nil
			}
			if idleTimer != nil {
				idleTimer.Reset(*idle)
			}
		}
	}
}
