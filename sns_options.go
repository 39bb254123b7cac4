package kombu

import (
	"strconv"
	"strings"
)

// predefinedExchangeKeys are the keys of a `predefined_exchanges` entry.
var predefinedExchangeKeys = map[string]bool{
	"arn": true, "access_key_id": true, "secret_access_key": true, "session_token": true, "region": true,
}

// exchangeFields maps the Exchange fields Config.Validate names to the options of a
// predefined_exchanges entry.
var exchangeFields = map[string]string{
	"TopicARN": `["arn"]`, "AccessKeyID/SecretAccessKey": "", "SessionToken": `["session_token"]`,
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
	entries, ok := p.mapping(key, v)
	if !ok {
		return
	}
	p.exchanges = make(map[string]Exchange, len(entries))
	for _, e := range entries {
		name, ok := e.key.(string)
		if !ok || name == "" {
			p.fail(key, "exchange names must be non-empty strings")
			continue
		}
		ekey := key + "[" + strconv.Quote(name) + "]"
		fields, ok := p.mapping(ekey, e.value)
		if !ok {
			continue
		}
		x := Exchange{Type: ExchangeFanout}
		region := ""
		for _, f := range fields {
			fname, _ := f.key.(string)
			fkey := ekey + "[" + strconv.Quote(fname) + "]"
			if !predefinedExchangeKeys[fname] {
				p.fail(fkey, "is not an option of a predefined exchange (arn, access_key_id, secret_access_key, session_token, region)")
				continue
			}
			if f.value == nil {
				continue
			}
			switch fname {
			case "arn":
				x.TopicARN, _ = p.str(fkey, f.value)
			case "access_key_id":
				x.AccessKeyID, _ = p.credential(fkey, f.value)
			case "secret_access_key":
				x.SecretAccessKey, _ = p.credential(fkey, f.value)
			case "session_token":
				x.SessionToken, _ = p.credential(fkey, f.value)
			case "region":
				region, _ = p.str(fkey, f.value)
			}
		}
		if x.TopicARN == "" {
			p.fail(ekey+`["arn"]`, "is required")
		} else if arn, err := parseTopicARN(x.TopicARN); err == nil && region != "" && region != arn.region {
			// SNS serves a topic only in its own region, the ARN's.
			p.fail(ekey+`["region"]`, "must be the region of the topic's ARN (%s), got %q", arn.region, region)
		}
		p.exchanges[name] = x
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
