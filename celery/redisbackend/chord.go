package redisbackend

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	kombu "github.com/watermill-kombu/watermill-kombu"
	"github.com/watermill-kombu/watermill-kombu/celery"
	"github.com/watermill-kombu/watermill-kombu/internal/pywire"
)

// Celery's Redis backend keeps a chord's state under its group key
// celery-taskset-meta-<group id> with suffixes:
//
//	.s  the header's size, set by the client before it sends the header
//	.t  a difference to add to the size (Celery's add_to_chord)
//	.j  the recorded header results, [1, task id, state, result] in JSON: a sorted set
//	    scored by group_index (result_chord_ordered, the default), else a list
//	.d  the set of "<task id>:<group_index>" already recorded, so that a task run twice
//	    counts once
//	.c  the claim to call the body (a random token, with a short expiry), then "done"
//
// and the group key itself holds a GroupResult the client saved when the header nests
// groups. The scripts below take the same steps as Celery 5.7's, on the same keys, so that Go
// and Python workers can finish the header tasks of one chord.

// chordPartScript records one header result, unless it was recorded already, refreshes the
// keys' expiry, and takes the claim when the header is complete. It returns
// {recorded results, size difference, size, claimed}; {-1, 0, 0, 0} once the chord is done.
var chordPartScript = redis.NewScript(`
local jkey, tkey, skey, dkey, gkey, ckey = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local tid, value, ordered, score = ARGV[1], ARGV[2], ARGV[3] == '1', ARGV[4]
local ttl, group_ttl, claim_ttl, token = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7]), ARGV[8]

if redis.call('GET', ckey) == 'done' then
  return {-1, 0, 0, 0}
end
local seen = tid .. ':' .. score
if redis.call('SISMEMBER', dkey, seen) == 0 then
  if ordered then
    redis.call('ZADD', jkey, score, value)
  else
    redis.call('RPUSH', jkey, value)
  end
  redis.call('SADD', dkey, seen)
end
local count
if ordered then
  count = redis.call('ZCARD', jkey)
else
  count = redis.call('LLEN', jkey)
end
if ttl > 0 then
  redis.call('EXPIRE', jkey, ttl)
  redis.call('EXPIRE', tkey, ttl)
  redis.call('EXPIRE', skey, ttl)
  redis.call('EXPIRE', dkey, ttl)
  if group_ttl > 0 then
    redis.call('EXPIRE', gkey, group_ttl)
  end
end
local diff = redis.call('GET', tkey)
local size = redis.call('GET', skey)
local claimed = 0
if size and count == tonumber(size) + tonumber(diff or 0) then
  if redis.call('SET', ckey, token, 'NX', 'EX', claim_ttl) then
    claimed = 1
  end
end
return {count, diff, size, claimed}
`)

// chordCompleteScript deletes the chord's state and marks it done, if the claim is still ours.
var chordCompleteScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
redis.call('DEL', KEYS[2], KEYS[3], KEYS[4], KEYS[5])
if tonumber(ARGV[2]) > 0 then
  redis.call('SET', KEYS[1], 'done', 'EX', ARGV[2])
end
return 1
`)

// chordExtendScript extends our claim, or takes it again if it lapsed while the chord's size
// is still there.
var chordExtendScript = redis.NewScript(`
local owner = redis.call('GET', KEYS[1])
if owner == ARGV[1] then
  return redis.call('EXPIRE', KEYS[1], ARGV[2])
end
if not owner and redis.call('EXISTS', KEYS[2]) == 1 then
  if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2]) then
    return 1
  end
end
return 0
`)

// chordReleaseScript drops our claim.
var chordReleaseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
`)

const (
	// chordClaimTTL is how long the claim to call a body lasts while the results are read:
	// twice Celery's result_chord_join_timeout (3 s), at least 5 s, as Celery.
	chordClaimTTL = 6
	// chordPublishTTL is how long the claim lasts while the body is sent (Celery estimates it
	// from its publish retry policy: 21 s with the defaults).
	chordPublishTTL = 30
	// chordDoneTTL keeps the "done" marker, so late copies of header tasks are ignored.
	chordDoneTTL = 300
	// chordJoinTimeout bounds the wait for a saved GroupResult's members (Celery's
	// result_chord_join_timeout).
	chordJoinTimeout = 3 * time.Second
)

// GroupKey returns the Redis key of a group (a saved GroupResult), with suffix appended: the
// chord's state lives under it (".j", ".s"...).
func (b *Backend) GroupKey(groupID, suffix string) string {
	return b.prefix + "celery-taskset-meta-" + groupID + suffix
}

// ChordPartReturn records a chord header task's final state the way Celery's Redis backend
// does, in one atomic script; see ChordBackend.
func (b *Backend) ChordPartReturn(ctx context.Context, part celery.ChordPart) (celery.ChordJoin, error) {
	if part.GroupID == "" || part.TaskID == "" {
		return nil, nil
	}
	res, err := encodeResultValue(part.Result)
	if err != nil {
		return nil, fmt.Errorf("redisbackend: chord %s: result of task %s: %w", part.GroupID, part.TaskID, err)
	}
	value := []byte(`[1, `)
	value = pywire.AppendString(value, part.TaskID)
	value = append(value, ", "...)
	value = pywire.AppendString(value, part.State)
	value = append(value, ", "...)
	if value, err = pywire.AppendJSON(value, res); err != nil {
		return nil, fmt.Errorf("redisbackend: chord %s: result of task %s: %w", part.GroupID, part.TaskID, err)
	}
	value = append(value, ']')
	score := "+inf"
	if part.GroupIndex != nil {
		score = strconv.Itoa(*part.GroupIndex)
	}
	ttl := b.expirySeconds()
	j := &redisChordJoin{b: b, gid: part.GroupID, token: uuid.NewString()}
	ordered := "1"
	if b.unordered {
		ordered = "0"
	}
	keys := []string{j.key(".j"), j.key(".t"), j.key(".s"), j.key(".d"), j.key(""), j.key(".c")}
	out, err := chordPartScript.Run(ctx, b.client, keys,
		part.TaskID, value, ordered, score, ttl, ttl, chordClaimTTL, j.token).Slice()
	if err != nil {
		return nil, fmt.Errorf("%w: redisbackend: chord %s, task %s: %w", kombu.ErrConnection, part.GroupID, part.TaskID, err)
	}
	if len(out) != 4 || out[3] != int64(1) {
		return nil, nil
	}
	if err := j.load(ctx); err != nil {
		var joinErr *celery.ChordJoinError
		if errors.As(err, &joinErr) {
			// The results will not read any better later: the claim is kept, for the
			// worker to fail the body and abandon the chord, as Celery does.
			return j, err
		}
		// Give the claim up, so that the redelivered header task claims the chord again.
		_ = j.Release(ctx)
		return nil, err
	}
	return j, nil
}

// joinError is the *celery.ChordJoinError for results that cannot be joined: pyType is the
// Python exception Celery raises for them, and its message the reason's text (Celery's own
// where known).
func (j *redisChordJoin) joinError(pyType, msg string) error {
	return &celery.ChordJoinError{
		Exception: pyType + "(" + pywire.Repr(pywire.AppendString(nil, msg), false) + ")",
		Err:       fmt.Errorf("redisbackend: chord %s: %s: %s", j.gid, pyType, msg)}
}

// unpackError is the error Python's "_, tid, state, retval = decode(tup)" raises for a
// decoded recorded result that is not a list of four.
func (j *redisChordJoin) unpackError(raw []byte) error {
	var tup []json.RawMessage
	switch {
	case json.Unmarshal(raw, &tup) != nil:
		return j.joinError("ValueError", "a recorded chord result is not a list [1, id, state, result]")
	case len(tup) < 4:
		return j.joinError("ValueError", fmt.Sprintf("not enough values to unpack (expected 4, got %d)", len(tup)))
	default:
		return j.joinError("ValueError", "too many values to unpack (expected 4)")
	}
}

// encodeResultValue encodes a result as the backend stores it.
func encodeResultValue(v any) (json.RawMessage, error) {
	switch x := v.(type) {
	case json.RawMessage:
		if len(x) == 0 {
			return json.RawMessage("null"), nil
		}
		return x, nil
	case nil:
		return json.RawMessage("null"), nil
	}
	return json.Marshal(v)
}

type redisChordJoin struct {
	b       *Backend
	gid     string
	token   string
	results []celery.ChordResult
}

func (j *redisChordJoin) key(suffix string) string { return j.b.GroupKey(j.gid, suffix) }

// load reads the header's results: from the GroupResult the client saved when the header
// nests groups, else from the recorded results.
func (j *redisChordJoin) load(ctx context.Context) error {
	saved, err := j.b.client.Get(ctx, j.key("")).Bytes()
	switch {
	case err == nil:
		return j.loadSaved(ctx, saved)
	case !errors.Is(err, redis.Nil):
		return fmt.Errorf("%w: redisbackend: chord %s: %w", kombu.ErrConnection, j.gid, err)
	}
	var members []string
	if j.b.unordered {
		members, err = j.b.client.LRange(ctx, j.key(".j"), 0, -1).Result()
	} else {
		members, err = j.b.client.ZRange(ctx, j.key(".j"), 0, -1).Result()
	}
	if err != nil {
		return fmt.Errorf("%w: redisbackend: chord %s: %w", kombu.ErrConnection, j.gid, err)
	}
	j.results = make([]celery.ChordResult, 0, len(members))
	for _, m := range members {
		if !json.Valid([]byte(m)) {
			// As Celery's backend.decode: a result written with another serializer
			// (pickle) or corrupt is a DecodeError.
			return j.joinError("DecodeError", fmt.Sprintf("a recorded chord result is not JSON: %.100q", m))
		}
		var tup []json.RawMessage
		if err := json.Unmarshal([]byte(m), &tup); err != nil || len(tup) != 4 {
			return j.unpackError([]byte(m))
		}
		var r celery.ChordResult
		if json.Unmarshal(tup[1], &r.TaskID) != nil || json.Unmarshal(tup[2], &r.State) != nil {
			return j.joinError("ValueError", fmt.Sprintf("a recorded chord result has no task id or state: %.100q", m))
		}
		r.Result = tup[3]
		j.results = append(j.results, r)
	}
	return nil
}

// loadSaved reads the results of a saved GroupResult, {"result": [[id, parent], [members]]},
// each member [[id, parent], null] for a task or a nested group of the same form. It waits
// up to Celery's join timeout for members that are not ready.
func (j *redisChordJoin) loadSaved(ctx context.Context, saved []byte) error {
	var doc struct {
		Result json.RawMessage `json:"result"`
	}
	if err := json.Unmarshal(saved, &doc); err != nil {
		return j.joinError("DecodeError", fmt.Sprintf("the saved group result is not JSON: %v", err))
	}
	tree, err := parseResultTuple(doc.Result)
	if err != nil {
		return j.joinError("ValueError", fmt.Sprintf("the saved group result: %v", err))
	}
	deadline := time.Now().Add(chordJoinTimeout)
	for {
		pending, err := j.b.fillResults(ctx, tree.Group)
		if err != nil && !errors.Is(err, kombu.ErrConnection) {
			return j.joinError("DecodeError", err.Error())
		}
		if err != nil {
			return err
		}
		if pending == "" {
			j.results = tree.Group
			return nil
		}
		if time.Now().After(deadline) {
			// As Celery's join: the chord fails with a join error.
			j.results = []celery.ChordResult{{TaskID: pending, State: celery.StateFailure,
				Result: json.RawMessage(`{"exc_type": "TimeoutError", "exc_message": ["The operation timed out."], "exc_module": "celery.exceptions"}`)}}
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// parseResultTuple reads Celery's result tuple form.
func parseResultTuple(raw json.RawMessage) (celery.ChordResult, error) {
	var tup []json.RawMessage
	if err := json.Unmarshal(raw, &tup); err != nil || len(tup) != 2 {
		return celery.ChordResult{}, fmt.Errorf("not a result tuple: %.100s", raw)
	}
	var head []json.RawMessage
	var r celery.ChordResult
	if err := json.Unmarshal(tup[0], &head); err != nil || len(head) == 0 || json.Unmarshal(head[0], &r.TaskID) != nil {
		return celery.ChordResult{}, fmt.Errorf("not a result tuple: %.100s", raw)
	}
	if isNull(tup[1]) {
		return r, nil
	}
	var members []json.RawMessage
	if err := json.Unmarshal(tup[1], &members); err != nil {
		return celery.ChordResult{}, fmt.Errorf("not a result tuple: %.100s", raw)
	}
	r.Group = make([]celery.ChordResult, 0, len(members))
	for _, m := range members {
		c, err := parseResultTuple(m)
		if err != nil {
			return celery.ChordResult{}, err
		}
		r.Group = append(r.Group, c)
	}
	return r, nil
}

// fillResults reads the stored results of the tasks in rs (recursively); it returns the id of
// a task that is not ready yet, "" when all are.
func (b *Backend) fillResults(ctx context.Context, rs []celery.ChordResult) (string, error) {
	for i := range rs {
		r := &rs[i]
		if r.Group != nil {
			if pending, err := b.fillResults(ctx, r.Group); err != nil || pending != "" {
				return pending, err
			}
			continue
		}
		if readyState(r.State) {
			continue
		}
		got, err := b.Get(ctx, r.TaskID)
		if errors.Is(err, celery.ErrResultNotFound) {
			return r.TaskID, nil
		}
		if err != nil {
			return "", err
		}
		if !readyState(got.Status) {
			return r.TaskID, nil
		}
		r.State = got.Status
		r.Result, _ = got.Result.(json.RawMessage)
	}
	return "", nil
}

func (j *redisChordJoin) Results() []celery.ChordResult { return j.results }

func (j *redisChordJoin) Extend(ctx context.Context) (bool, error) {
	n, err := chordExtendScript.Run(ctx, j.b.client, []string{j.key(".c"), j.key(".s")}, j.token, chordPublishTTL).Int()
	if err != nil {
		return false, fmt.Errorf("%w: redisbackend: chord %s: %w", kombu.ErrConnection, j.gid, err)
	}
	return n == 1, nil
}

func (j *redisChordJoin) Complete(ctx context.Context) error {
	keys := []string{j.key(".c"), j.key(".j"), j.key(".t"), j.key(".s"), j.key(".d")}
	n, err := chordCompleteScript.Run(ctx, j.b.client, keys, j.token, chordDoneTTL).Int()
	if err != nil {
		return fmt.Errorf("%w: redisbackend: chord %s: %w", kombu.ErrConnection, j.gid, err)
	}
	if n != 1 {
		return fmt.Errorf("redisbackend: chord %s: the claim was lost before its state was deleted; it is left to expire", j.gid)
	}
	return nil
}

func (j *redisChordJoin) Release(ctx context.Context) error {
	if err := chordReleaseScript.Run(ctx, j.b.client, []string{j.key(".c")}, j.token).Err(); err != nil {
		return fmt.Errorf("%w: redisbackend: chord %s: %w", kombu.ErrConnection, j.gid, err)
	}
	return nil
}

func (j *redisChordJoin) Abandon(ctx context.Context) error {
	if err := j.b.client.Del(ctx, j.key(".s")).Err(); err != nil {
		return fmt.Errorf("%w: redisbackend: chord %s: %w", kombu.ErrConnection, j.gid, err)
	}
	return nil
}

// readyState tells whether a task state is final.
func readyState(state string) bool {
	return state == celery.StateSuccess || state == celery.StateFailure || state == celery.StateRevoked
}

func isNull(raw json.RawMessage) bool { return len(raw) == 0 || string(raw) == "null" }
