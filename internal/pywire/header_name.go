package pywire

// HeaderName returns the name of a header Celery and Kombu send as a constant string, so that
// reading it does not allocate; ok is false for other names.
func HeaderName(key []byte) (name string, ok bool) {
	switch string(key) {
	case "lang":
		return "lang", true
	case "task":
		return "task", true
	case "id":
		return "id", true
	case "shadow":
		return "shadow", true
	case "eta":
		return "eta", true
	case "expires":
		return "expires", true
	case "group":
		return "group", true
	case "group_index":
		return "group_index", true
	case "retries":
		return "retries", true
	case "timelimit":
		return "timelimit", true
	case "root_id":
		return "root_id", true
	case "parent_id":
		return "parent_id", true
	case "argsrepr":
		return "argsrepr", true
	case "kwargsrepr":
		return "kwargsrepr", true
	case "origin":
		return "origin", true
	case "ignore_result":
		return "ignore_result", true
	case "replaced_task_nesting":
		return "replaced_task_nesting", true
	case "stamped_headers":
		return "stamped_headers", true
	case "stamps":
		return "stamps", true
	case "compression":
		return "compression", true
	}
	return "", false
}
