package kombu

import (
	"strconv"
	"strings"
)

// ParseBrokerURL reads a Celery `broker_url` for the SQS transport the way Kombu does:
//
//	sqs://                     AWS, credentials from the AWS SDK's default chain
//	sqs://KEY:SECRET@          AWS with these static credentials
//	sqs://@localhost:9324      an SQS-compatible server at http://localhost:9324
//	sqs://KEY:SECRET@host:port both
//
// KEY and SECRET are URL-unquoted (write '/' as %2F, '+' stays '+'). A host sets
// Config.EndpointURL to http://host[:port], as Kombu does; ParseCeleryBroker makes it https
// with the is_secure transport option. The path (Kombu's virtual host) is ignored, as Kombu's SQS transport does. Query
// parameters and several URLs separated by ';' are errors. Errors never show any part of the
// URL, which may hold credentials.
func ParseBrokerURL(brokerURL string) (Config, error) {
	bad := func(reason string) (Config, error) {
		return Config{}, &ConfigError{Field: "broker_url", Reason: reason}
	}
	s := strings.TrimSpace(brokerURL)
	if strings.Contains(s, ";") {
		return bad("holds several URLs separated by ';', which is not supported")
	}
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok || !strings.EqualFold(scheme, "sqs") {
		return bad("must start with sqs://")
	}
	netloc := rest
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		netloc = rest[:i]
		tail := rest[i:]
		if j := strings.IndexAny(tail, "?#"); j >= 0 && len(tail) > j+1 {
			return bad("must not have a query string or fragment (a secret key containing '/', '?' or '#' must be written with %2F, %3F or %23)")
		}
	}

	var cfg Config
	hostport := netloc
	if i := strings.LastIndexByte(netloc, '@'); i >= 0 {
		user, pass, _ := strings.Cut(netloc[:i], ":")
		cfg.AccessKeyID, cfg.SecretAccessKey = pyUnquote(user), pyUnquote(pass)
		hostport = netloc[i+1:]
	}
	if (cfg.AccessKeyID == "") != (cfg.SecretAccessKey == "") {
		return bad("must give both an access key and a secret key (sqs://KEY:SECRET@), or neither")
	}

	host, port := hostport, ""
	if strings.HasPrefix(hostport, "[") {
		end := strings.IndexByte(hostport, ']')
		if end < 0 {
			return bad("has an unterminated IPv6 address")
		}
		host = hostport[1:end]
		after := hostport[end+1:]
		if after != "" {
			if after[0] != ':' {
				return bad("has characters after its IPv6 address")
			}
			port = after[1:]
		}
		if host != "" {
			host = "[" + strings.ToLower(host) + "]"
		}
	} else {
		host, port, _ = strings.Cut(hostport, ":")
		host = pyUnquote(strings.ToLower(host))
	}
	if port != "" {
		n, err := strconv.Atoi(port)
		if err != nil || n < 0 || n > 65535 || strings.TrimLeft(port, "0123456789") != "" {
			return bad("has a port that is not a number from 0 to 65535 (a secret key containing '/' must be written %2F)")
		}
		if n != 0 {
			host += ":" + strconv.Itoa(n)
		}
	}
	if host != "" {
		cfg.EndpointURL = "http://" + host
	}
	return cfg, nil
}

// pyUnquote decodes %XX escapes as Python's urllib.parse.unquote does: invalid escapes stay as
// they are, and '+' stays '+'.
func pyUnquote(s string) string {
	if !strings.Contains(s, "%") {
		return s
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]) {
			n, _ := strconv.ParseUint(s[i+1:i+3], 16, 8)
			b = append(b, byte(n))
			i += 2
			continue
		}
		b = append(b, s[i])
	}
	return string(b)
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}
