package kombu

import (
	"strconv"
	"strings"
)

// predefinedExchangeFields maps the PredefinedExchange fields Config.Validate names to the
// options of a predefined_exchanges entry.
var predefinedExchangeFields = map[string]string{
	"ARN": `["arn"]`, "AccessKeyID/SecretAccessKey": "", "SessionToken": `["session_token"]`,
}

// predefinedExchangeOption turns a Validate field name of a predefined exchange into its
// transport option, or returns "".
func predefinedExchangeOption(field string) string {
	rest, ok := strings.CutPrefix(field, "PredefinedExchanges[")
	if !ok {
		return ""
	}
	if i := strings.LastIndex(rest, "]."); i >= 0 {
		if sub, ok := predefinedExchangeFields[rest[i+2:]]; ok {
			return "predefined_exchanges[" + strconv.Quote(rest[:i]) + "]" + sub
		}
	}
	return ""
}

// predefinedExchangeKeys are the keys of a `predefined_exchanges` entry.
var predefinedExchangeKeys = map[string]bool{
	"arn": true, "access_key_id": true, "secret_access_key": true, "session_token": true, "region": true,
}

// predefinedExchanges reads Kombu's `predefined_exchanges`: exchange name -> {arn,
// access_key_id, secret_access_key, session_token, region}. Config.Validate checks the values.
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
		exchanges[name] = x
	}
	return exchanges
}
