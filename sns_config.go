package kombu

import (
	"fmt"
	"strings"
)

// String describes the exchange without its credentials.
func (ex Exchange) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "kombu.Exchange{Type:%q", ex.Type)
	if len(ex.Bindings) > 0 {
		fmt.Fprintf(&b, " Bindings:%v", ex.Bindings)
	}
	if ex.TopicARN != "" {
		fmt.Fprintf(&b, " TopicARN:%q", ex.TopicARN)
	}
	if ex.AccessKeyID != "" {
		b.WriteString(" Credentials:static(redacted)")
	}
	b.WriteString("}")
	return b.String()
}

// GoString keeps credentials out of %#v as well.
func (ex Exchange) GoString() string { return ex.String() }

// snsARN is an SNS topic ARN split into its parts.
type snsARN struct {
	partition, region, account, name string
}

// parseTopicARN splits arn:<partition>:sns:<region>:<account>:<name>.
func parseTopicARN(arn string) (snsARN, error) {
	parts := strings.Split(arn, ":")
	if len(parts) != 6 || parts[0] != "arn" || parts[1] == "" || parts[2] != "sns" || parts[3] == "" || parts[4] == "" || parts[5] == "" {
		return snsARN{}, fmt.Errorf("must be an SNS topic ARN (arn:aws:sns:<region>:<account>:<topic>), got %q", arn)
	}
	return snsARN{partition: parts[1], region: parts[3], account: parts[4], name: parts[5]}, nil
}

// snsExchange reports whether publishing to name goes through SNS: SupportsFanout is set and
// name is a fanout exchange of Exchanges.
func (c Config) snsExchange(name string) bool {
	ex, ok := c.Exchanges[name]
	return c.SupportsFanout && ok && ex.Type == ExchangeFanout
}

// snsEndpoint is the SNS endpoint URL to use, or "" for AWS's own.
func (c Config) snsEndpoint() string {
	if c.SNSEndpointURL != "" {
		return c.SNSEndpointURL
	}
	return c.EndpointURL
}

// validateFanout checks the SNS fields.
func (c Config) validateFanout() []error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, &ConfigError{Field: field, Reason: fmt.Sprintf(format, args...)})
	}
	if c.SNSEndpointURL != "" && !strings.HasPrefix(c.SNSEndpointURL, "http://") && !strings.HasPrefix(c.SNSEndpointURL, "https://") {
		bad("SNSEndpointURL", "must start with http:// or https://, got %q", c.SNSEndpointURL)
	}
	for _, name := range sortedKeys(c.Exchanges) {
		ex := c.Exchanges[name]
		field := "Exchanges[" + name + "]"
		if ex.TopicARN == "" {
			if ex.AccessKeyID != "" || ex.SessionToken != "" {
				bad(field+".AccessKeyID", "credentials are for the SNS topic of TopicARN, which is not set")
			}
			if c.SupportsFanout && ex.Type == ExchangeFanout && !c.DisableTopicCreation {
				if err := validSNSTopicName(CanonicalQueueName(c.QueueNamePrefix, name)); err != nil {
					bad(field, "%s", err)
				}
			}
			continue
		}
		if !c.SupportsFanout || ex.Type != ExchangeFanout {
			bad(field+".TopicARN", "is for fanout exchanges with SupportsFanout set (they are SNS topics only then)")
		}
		if arn, err := parseTopicARN(ex.TopicARN); err != nil {
			bad(field+".TopicARN", "%s", err)
		} else if strings.HasSuffix(name, ".fifo") != strings.HasSuffix(arn.name, ".fifo") {
			bad(field+".TopicARN", "an exchange name ending in .fifo needs a FIFO topic (its name ending in .fifo), and only then")
		}
		if (ex.AccessKeyID == "") != (ex.SecretAccessKey == "") {
			bad(field+".AccessKeyID/SecretAccessKey", "must be given together")
		}
		if ex.SessionToken != "" && ex.AccessKeyID == "" {
			bad(field+".SessionToken", "needs AccessKeyID and SecretAccessKey")
		}
	}
	return errs
}

// validSNSTopicName checks SNS's rule: 1 to 256 letters, digits, '-' and '_', and for a FIFO
// topic the ".fifo" suffix.
func validSNSTopicName(name string) error {
	base := strings.TrimSuffix(name, ".fifo")
	if base == "" || len(name) > 256 {
		return fmt.Errorf("SNS topic name %q must have 1 to 256 characters", name)
	}
	for i := 0; i < len(base); i++ {
		c := base[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return fmt.Errorf("SNS topic name %q has %q, which SNS does not allow", name, c)
		}
	}
	return nil
}
