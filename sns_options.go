package kombu

import (
	"strconv"
	"strings"
)

// predefinedExchangeKeys are the keys of a `predefined_exchanges` entry.
var predefinedExchangeKeys = map[string]bool{
	"arn": true, "access_key_id": true, "secret_access_key": true, "session_token": true, "region": true,
}

// predefinedExchanges reads Kombu's `predefined_exchanges`: exchange name -> {arn,
// access_key_id, secret_access_key, session_token, region}.
func (p *optionParser) predefinedExchanges(key string, v any) map[string]PredefinedExchange {
	entries, ok := p.mapping(key, v)
	if !ok {
		return nil
	}
	exchanges := make(map[string]PredefinedExchange, len(entries))
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
		var x PredefinedExchange
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
				x.ARN, _ = p.str(fkey, f.value)
			case "access_key_id":
				x.AccessKeyID, _ = p.credential(fkey, f.value)
			case "secret_access_key":
				x.SecretAccessKey, _ = p.credential(fkey, f.value)
			case "session_token":
				x.SessionToken, _ = p.credential(fkey, f.value)
			case "region":
				x.Region, _ = p.str(fkey, f.value)
			}
		}
		arnKey := ekey + `["arn"]`
		if x.ARN == "" {
			p.fail(arnKey, "is required")
		} else if arn, err := parseTopicARN(x.ARN); err != nil {
			p.fail(arnKey, "must be an SNS topic ARN (arn:aws:sns:<region>:<account>:<topic>)")
		} else if strings.HasSuffix(name, ".fifo") != strings.HasSuffix(arn.name, ".fifo") {
			p.fail(arnKey, "an exchange name ending in .fifo needs a FIFO topic (ending in .fifo), and only then")
		}
		if (x.AccessKeyID == "") != (x.SecretAccessKey == "") {
			p.fail(ekey, "access_key_id and secret_access_key must be given together")
		}
		if x.SessionToken != "" && x.AccessKeyID == "" {
			p.fail(ekey+`["session_token"]`, "needs access_key_id and secret_access_key")
		}
		exchanges[name] = x
	}
	return exchanges
}
