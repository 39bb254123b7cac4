package kombu

import (
	"fmt"
	"strings"
)

// PredefinedExchange is an existing SNS topic for a fanout exchange (Kombu: an entry of
// `predefined_exchanges`). Its topic is never created, and subscriptions on it that point to
// deleted queues are left alone.
type PredefinedExchange struct {
	// ARN is the topic's ARN, arn:aws:sns:<region>:<account>:<name>; an exchange whose name
	// ends in .fifo needs a FIFO topic (its name ends in .fifo), and only such an exchange.
	ARN string
	// Region overrides the region of SNS requests for this topic. Default: the ARN's region
	// (SNS serves a topic only in its own region; Kombu uses Config.Region).
	Region string
	// AccessKeyID, SecretAccessKey and SessionToken sign the SNS requests for this topic
	// only. Empty means the Config's credentials.
	AccessKeyID     string
	SecretAccessKey string
	SessionToken    string
}

// String describes the exchange without its credentials.
func (e PredefinedExchange) String() string {
	creds := "default"
	if e.AccessKeyID != "" {
		creds = "static(redacted)"
	}
	return fmt.Sprintf("kombu.PredefinedExchange{ARN:%q Credentials:%s}", e.ARN, creds)
}

// GoString keeps credentials out of %#v as well.
func (e PredefinedExchange) GoString() string { return e.String() }

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

// snsExchange reports whether publishing to name goes through SNS: SupportsFanout is set, and
// name is a fanout exchange of Exchanges or one of PredefinedExchanges.
func (c Config) snsExchange(name string) bool {
	if !c.SupportsFanout || name == "" {
		return false
	}
	if _, ok := c.PredefinedExchanges[name]; ok {
		return true
	}
	ex, ok := c.Exchanges[name]
	return ok && ex.Type == ExchangeFanout
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
	if len(c.PredefinedExchanges) > 0 && !c.SupportsFanout {
		bad("PredefinedExchanges", "needs SupportsFanout (fanout exchanges are SNS topics only then)")
	}
	for _, name := range sortedKeys(c.PredefinedExchanges) {
		e := c.PredefinedExchanges[name]
		field := "PredefinedExchanges[" + name + "]"
		if name == "" {
			bad(field, "an exchange needs a name")
		}
		if e.ARN == "" {
			bad(field+".ARN", "is required")
		} else if arn, err := parseTopicARN(e.ARN); err != nil {
			bad(field+".ARN", "%s", err)
		} else if strings.HasSuffix(name, ".fifo") != strings.HasSuffix(arn.name, ".fifo") {
			bad(field+".ARN", "an exchange name ending in .fifo needs a FIFO topic (its name ending in .fifo), and only then")
		}
		if (e.AccessKeyID == "") != (e.SecretAccessKey == "") {
			bad(field+".AccessKeyID/SecretAccessKey", "must be given together")
		}
		if e.SessionToken != "" && e.AccessKeyID == "" {
			bad(field+".SessionToken", "needs AccessKeyID and SecretAccessKey")
		}
		if ex, ok := c.Exchanges[name]; ok && ex.Type != ExchangeFanout {
			bad(field, "names an exchange of type %q in Exchanges; only fanout exchanges go through SNS", ex.Type)
		}
	}
	if c.SupportsFanout && len(c.PredefinedExchanges) > 0 {
		for _, name := range sortedKeys(c.Exchanges) {
			if _, ok := c.PredefinedExchanges[name]; !ok && c.Exchanges[name].Type == ExchangeFanout {
				bad("Exchanges["+name+"]", "is a fanout exchange but not among PredefinedExchanges; with PredefinedExchanges set, topics are never created")
			}
		}
	}
	if c.SupportsFanout {
		for _, name := range sortedKeys(c.Exchanges) {
			if c.Exchanges[name].Type != ExchangeFanout || len(c.PredefinedExchanges) > 0 {
				continue
			}
			if err := validSNSTopicName(CanonicalQueueName(c.QueueNamePrefix, name)); err != nil {
				bad("Exchanges["+name+"]", "%s", err)
			}
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
