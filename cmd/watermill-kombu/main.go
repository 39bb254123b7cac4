// Command watermill-kombu inspects and feeds SQS queues shared with Celery and Kombu.
//
// Usage:
//
//	watermill-kombu decode < body.sqs
//	watermill-kombu send-task --queue celery --task proj.add --args '[2, 3]'
//	watermill-kombu tail --queue celery [--ack] [--count N] [--idle 5s]
//
// decode reads one SQS message body on stdin and prints the Kombu envelope and, for a
// Celery task, the task as indented JSON. send-task enqueues a task the way Celery's
// apply_async does and prints its id. tail prints the messages of a queue, one JSON
// document per line; with --ack it deletes them, otherwise each is returned to the queue.
//
// Connection flags (send-task, tail): --endpoint (e.g. http://127.0.0.1:9324 for
// ElasticMQ), --region, and --broker, a Celery broker URL such as sqs://KEY:SECRET@host:port
// (default $CELERY_BROKER_URL). Without credentials in the broker URL, the AWS SDK's
// default chain is used (AWS_ACCESS_KEY_ID, ~/.aws, ...).
//
// Errors are reported on one line on stderr, with exit status 1 (2 for usage errors).
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	kombu "github.com/watermill-kombu/watermill-kombu"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

const usage = `usage: watermill-kombu <command> [flags]

commands:
  decode      decode an SQS message body read on stdin
  send-task   enqueue a Celery task and print its id
  tail        print the messages of a queue (--ack deletes them)

Run 'watermill-kombu <command> -h' for a command's flags.
`

// errUsage marks errors already explained by the flag package.
var errUsage = errors.New("usage")

// usageError is a usage error that the flag package did not explain: its message is printed,
// and the exit status is 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func (e *usageError) Is(target error) bool { return target == errUsage }

func badUsage(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// run executes one command and returns the exit status.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "decode":
		err = decodeCmd(args[1:], stdin, stdout, stderr)
	case "send-task":
		err = sendTaskCmd(args[1:], stdout, stderr)
	case "tail":
		err = tailCmd(args[1:], stdout, stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "watermill-kombu: unknown command %q\n%s", args[0], usage)
		return 2
	}
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		if ue := (*usageError)(nil); errors.As(err, &ue) {
			fmt.Fprintf(stderr, "watermill-kombu %s: %s\n", args[0], oneLine(ue.Error()))
		}
		return 2
	default:
		fmt.Fprintf(stderr, "watermill-kombu %s: %s\n", args[0], oneLine(err.Error()))
		return 1
	}
}

// oneLine keeps an error message on a single line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// parseFlags parses a command's flags, refusing stray arguments.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return errUsage
	}
	return nil
}

// connFlags are the flags that say where SQS is.
type connFlags struct {
	endpoint string
	region   string
	broker   string
}

func (c *connFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&c.endpoint, "endpoint", "", "SQS endpoint URL, e.g. http://127.0.0.1:9324 (default: AWS, or the broker URL's host)")
	fs.StringVar(&c.region, "region", "", "AWS region (default: the AWS SDK's, else us-east-1)")
	// Not defaulted to $CELERY_BROKER_URL here: the flag package would print its secret in
	// the help text.
	fs.StringVar(&c.broker, "broker", "", "Celery broker URL, sqs://[KEY:SECRET@][host:port] (default: $CELERY_BROKER_URL)")
}

// config builds the library configuration from the flags.
func (c *connFlags) config() (kombu.Config, error) {
	var cfg kombu.Config
	if c.broker == "" {
		c.broker = os.Getenv("CELERY_BROKER_URL")
	}
	if c.broker != "" {
		var err error
		if cfg, err = kombu.ParseBrokerURL(c.broker); err != nil {
			return cfg, err
		}
	}
	if c.endpoint != "" {
		cfg.EndpointURL = c.endpoint
	}
	if c.region != "" {
		cfg.Region = c.region
	}
	return cfg, nil
}
