package kombu

import (
	"strconv"
	"strings"
)

// predefinedExchangeKeys are the keys of a `predefined_exchanges` entry.
var predefinedExchangeKeys = []string{"arn", "access_key_id", "secret_access_key", "session_token", "region"}

// exchangeFields maps the Exchange fields Config.Validate names to the options of a
// predefined_exchanges entry.
var exchangeFields = map[string]string{
	"TopicARN": `["arn"]`, "AccessKeyID/SecretAccessKey": `["access_key_id"] and ["secret_access_key"]`, "SessionToken": `["session_token"]`,
}

// predefinedExchangeOption turns a Validate field name of an exchange's topic into its
// transport option, or returns "".
func predefinedExchangeOption(field string) string {
	rest, ok := strings.CutPrefix(field, "Exchanges[")
	if !ok {
		return ""
	}
	if i := strings.LastIndex(rest, "]."); i >= 0 {
		if sub, ok := exchangeFields[rest[i+2:]]; ok {
			return "predefined_exchanges[" + strconv.Quote(rest[:i]) + "]" + sub
		}
	}
	return ""
}

// predefinedExchanges reads Kombu's `predefined_exchanges`: exchange name -> {arn,
// access_key_id, secret_access_key, session_token, region}, into p.exchanges.
// Config.Validate checks the values.
func (p *optionParser) predefinedExchanges(key string, v any) {
	entries, ok := p.namedEntries(key, "exchange", v, predefinedExchangeKeys)
	if !ok {
		return
	}
	p.exchanges = make(map[string]Exchange, len(entries))
	for _, e := range entries {
		x := Exchange{Type: ExchangeFanout}
		region := ""
		for _, o := range e.options {
			switch o.name {
			case "arn":
				x.TopicARN, _ = p.str(o.key, o.value)
			case "access_key_id":
				x.AccessKeyID, _ = p.credential(o.key, o.value)
			case "secret_access_key":
				x.SecretAccessKey, _ = p.credential(o.key, o.value)
			case "session_token":
				x.SessionToken, _ = p.credential(o.key, o.value)
			case "region":
				region, _ = p.str(o.key, o.value)
			}
		}
		if x.TopicARN == "" {
			p.fail(e.key+`["arn"]`, "is required")
		} else if arn, err := parseTopicARN(x.TopicARN); err == nil && region != "" && region != arn.region {
			// SNS serves a topic only in its own region, the ARN's.
			p.fail(e.key+`["region"]`, "must be the region of the topic's ARN (%s), got %q", arn.region, region)
		}
		p.exchanges[e.name] = x
	}
}

// applyPredefinedExchanges adds the predefined exchanges read to cfg.Exchanges, as fanout
// exchanges on their topics, and sets DisableTopicCreation: with predefined_exchanges Kombu
// never creates a topic. Without supports_fanout they have no effect, as in Kombu.
func (p *optionParser) applyPredefinedExchanges(cfg *Config) {
	if p.exchanges == nil {
		return
	}
	if !cfg.SupportsFanout {
		p.noEffect = append(p.noEffect, "predefined_exchanges")
		return
	}
	if cfg.Exchanges == nil {
		cfg.Exchanges = make(map[string]Exchange, len(p.exchanges))
	}
	for name, x := range p.exchanges {
		if old, ok := cfg.Exchanges[name]; ok {
			x.Type, x.Bindings = old.Type, old.Bindings
		}
		cfg.Exchanges[name] = x
	}
	cfg.DisableTopicCreation = true
}
