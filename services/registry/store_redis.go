package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisStore keeps registrations in Redis so several registry replicas share them.
//
// Layout under Prefix (default "mxp:registry:"):
//
//	agent:<id>   hash: d (descriptor JSON), reg and hb (Unix ms), ls and la (the
//	             reported lifecycle: state, and accepting as "1", "0" or "" unknown;
//	             absent in records written before they existed, read as unknown)
//	leases       sorted set: id scored by lease end (Unix ms)
//	ids          sorted set: every id at score 0 (lexicographic pages for listings)
//	cap:<name>   sorted set: ids of agents with the capability, all at score 1, so
//	             discovery walks them in id order (ZRANGEBYLEX) and tests membership
//	             (ZMSCORE) without reading whole sets
//	byname:<name> sorted set: ids of agents with the name, all at score 1 (walked and
//	             tested like cap:<name> by discovery's exact-name filter); the agent
//	             hash's o field is its owner ("" or absent: none), n its name
//	claim:<name> hash: o (the owner whose claim the name is) and e (the latest lease end
//	             of that owner's agents of the name, Unix ms): Register's owner check
//	             reads it alone. Without agents it expires (PEXPIREAT) at e plus the
//	             grace, at once without a grace. The check compares e plus the grace
//	             with the registry's clock; the expiry, by the Redis clock, only
//	             reclaims memory, so keep the clocks in step (NTP)
//	name:<name>  set: the name index of records written before claims existed, read by
//	             Register only for a name without a claim; a heartbeat moves its
//	             agent to byname and claims the name
//
// Every write is one Lua script, so it is atomic against the others; PopExpired removes
// and returns ended leases in one script, so across replicas each expiry is popped (and
// announced) exactly once. Keys are computed inside the scripts, so the layout suits a
// single Redis (or a primary with replicas/Sentinel), not Redis Cluster.
type RedisStore struct {
	c      redis.UniversalClient
	prefix string
	grace  time.Duration
	addr   string // host:port, for errors
}

// graceMS is the name claim grace as a script argument.
func (s *RedisStore) graceMS() int64 { return s.grace.Milliseconds() }

// RedisOptions configure NewRedisStore.
type RedisOptions struct {
	URL      string // redis://[user:password@]host:port/db
	Password string // overrides the URL's password when set
	Prefix   string // key prefix; default "mxp:registry:"
	// NameClaimGrace is how long a name stays claimed by its owner after the last lease
	// of its agents ends; 0 or negative: not at all (see MemoryOptions).
	NameClaimGrace time.Duration
}

// NewRedisStore connects to Redis and checks it answers.
func NewRedisStore(ctx context.Context, o RedisOptions) (*RedisStore, error) {
	s, err := redisStoreFor(o)
	if err != nil {
		return nil, err
	}
	if err := s.Open(ctx); err != nil {
		s.c.Close()
		return nil, fmt.Errorf("registry: %w", err)
	}
	return s, nil
}

// redisStoreFor builds the store without contacting Redis: the client dials on first
// use, so New can build a registry with no I/O (Run pings before serving).
func redisStoreFor(o RedisOptions) (*RedisStore, error) {
	opts, err := redis.ParseURL(o.URL)
	if err != nil {
		return nil, fmt.Errorf("registry: redis url: %w", err)
	}
	if o.Password != "" {
		opts.Password = o.Password
	}
	if o.Prefix == "" {
		o.Prefix = "mxp:registry:"
	}
	return &RedisStore{c: redis.NewClient(opts), prefix: o.Prefix, grace: max(o.NameClaimGrace, 0), addr: opts.Addr}, nil
}

// claimFn is shared by the scripts that move names: vacate drops a claim at its end once
// no agent holds its name (at once without a grace), by Redis key expiry.
const claimFn = `
local function vacate(p, name, grace)
  local ck = p .. 'claim:' .. name
  if redis.call('ZCARD', p .. 'byname:' .. name) > 0 then return end
  local e = redis.call('HGET', ck, 'e')
  if grace <= 0 or not e then redis.call('DEL', ck) return end
  redis.call('PEXPIREAT', ck, tonumber(e) + grace)
end
`

// registerScript checks the id and the name's claim (two O(1) reads; the scan of the
// legacy name:<name> set runs only for a name without a claim, written before claims
// existed) and writes the agent, its indexes and the claim.
var registerScript = redis.NewScript(claimFn + `
local p, id, d, now, exp, ls, la, owner, name, grace = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4]), ARGV[5], ARGV[6], ARGV[7], ARGV[8], ARGV[9], tonumber(ARGV[10])
local key = p .. 'agent:' .. id
local oldexp = redis.call('ZSCORE', p .. 'leases', id)
local live = oldexp and tonumber(oldexp) > now
if live and (redis.call('HGET', key, 'o') or '') ~= owner then return {'held', id, '1'} end
local ck = p .. 'claim:' .. name
local c = redis.call('HMGET', ck, 'o', 'e')
if c[1] then
  if c[1] ~= owner and tonumber(c[2]) + grace > now then
    return {'held', redis.call('ZRANGE', p .. 'byname:' .. name, 0, 0)[1] or '', '0'}
  end
else
  for _, h in ipairs(redis.call('SMEMBERS', p .. 'name:' .. name)) do
    if h ~= id then
      local e = redis.call('ZSCORE', p .. 'leases', h)
      if e and tonumber(e) > now and (redis.call('HGET', p .. 'agent:' .. h, 'o') or '') ~= owner then
        return {'held', h, '0'}
      end
    end
  end
end
local old = redis.call('HMGET', key, 'd', 'reg', 'hb', 'ls', 'la', 'o')
if old[1] then
  local od = cjson.decode(old[1])
  for _, c in ipairs(od.capabilities) do redis.call('ZREM', p .. 'cap:' .. c, id) end
  if od.name then
    redis.call('SREM', p .. 'name:' .. od.name, id)
    redis.call('ZREM', p .. 'byname:' .. od.name, id)
    if od.name ~= name then vacate(p, od.name, grace) end
  end
end
local reg = old[2] or ARGV[4]
if not live then reg = ARGV[4] end -- an ended lease starts afresh
redis.call('HSET', key, 'd', d, 'reg', reg, 'hb', ARGV[4], 'ls', ls, 'la', la, 'o', owner, 'n', name)
redis.call('ZADD', p .. 'leases', exp, id)
redis.call('ZADD', p .. 'ids', 0, id)
redis.call('ZADD', p .. 'byname:' .. name, 1, id)
if c[1] == owner then
  if tonumber(exp) > tonumber(c[2]) then redis.call('HSET', ck, 'e', exp) end
else
  redis.call('HSET', ck, 'o', owner, 'e', exp)
end
redis.call('PERSIST', ck)
for i = 11, #ARGV do redis.call('ZADD', p .. 'cap:' .. ARGV[i], 1, id) end
if old[1] then return {old[1], old[2] or '0', old[3] or '0', oldexp or '0', old[4] or '', old[5] or '', old[6] or ''} end
return false
`)

// heartbeatScript renews a lease and the claim of the agent's owner on its name; with
// ARGV[5] == '1' it also replaces the lifecycle (ls, la) and returns the previous one as
// {ls, la}. An unknown agent or ended lease returns nil. A record written before names had
// claims (no n field) is moved to the byname index and its name claimed here.
var heartbeatScript = redis.NewScript(`
local p, id, now, exp = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4]
local s = redis.call('ZSCORE', p .. 'leases', id)
if not s or tonumber(s) <= now then return false end
redis.call('ZADD', p .. 'leases', exp, id)
local key = p .. 'agent:' .. id
local on = redis.call('HMGET', key, 'o', 'n')
local owner, name = on[1] or '', on[2]
if not name then
  local d = redis.call('HGET', key, 'd')
  if d then
    name = cjson.decode(d).name
    redis.call('HSET', key, 'n', name)
    redis.call('SREM', p .. 'name:' .. name, id)
    redis.call('ZADD', p .. 'byname:' .. name, 1, id)
  end
end
if name then
  local ck = p .. 'claim:' .. name
  local c = redis.call('HMGET', ck, 'o', 'e')
  if not c[1] then
    redis.call('HSET', ck, 'o', owner, 'e', exp)
  elseif c[1] == owner and tonumber(exp) > tonumber(c[2]) then
    redis.call('HSET', ck, 'e', exp)
  end
end
if ARGV[5] ~= '1' then
  redis.call('HSET', key, 'hb', ARGV[3])
  return {}
end
local old = redis.call('HMGET', key, 'ls', 'la')
redis.call('HSET', key, 'hb', ARGV[3], 'ls', ARGV[6], 'la', ARGV[7])
return {old[1] or '', old[2] or ''}
`)

// removeFn is shared by deregister and popExpired: it deletes one agent, leaves its
// name's claim to end after the grace, and returns {d, reg, hb, exp, ls, la, o} (or nil
// when absent).
const removeFn = claimFn + `
local function remove(p, id, grace)
  local key = p .. 'agent:' .. id
  local h = redis.call('HMGET', key, 'd', 'reg', 'hb', 'ls', 'la', 'o')
  local exp = redis.call('ZSCORE', p .. 'leases', id) or '0'
  redis.call('ZREM', p .. 'leases', id)
  redis.call('ZREM', p .. 'ids', id)
  if not h[1] then return nil end
  local d = cjson.decode(h[1])
  for _, c in ipairs(d.capabilities) do redis.call('ZREM', p .. 'cap:' .. c, id) end
  if d.name then
    redis.call('SREM', p .. 'name:' .. d.name, id)
    redis.call('ZREM', p .. 'byname:' .. d.name, id)
    vacate(p, d.name, grace)
  end
  redis.call('DEL', key)
  return {h[1], h[2] or '0', h[3] or '0', exp, h[4] or '', h[5] or '', h[6] or ''}
end
`

var deregisterScript = redis.NewScript(removeFn + `
local r = remove(ARGV[1], ARGV[2], tonumber(ARGV[3]))
if not r then return false end
return r
`)

var popExpiredScript = redis.NewScript(removeFn + `
local p = ARGV[1]
local ids = redis.call('ZRANGEBYSCORE', p .. 'leases', '-inf', ARGV[2], 'LIMIT', 0, tonumber(ARGV[3]))
local out = {}
for _, id in ipairs(ids) do
  local r = remove(p, id, tonumber(ARGV[4]))
  if r then for _, v in ipairs(r) do table.insert(out, v) end end
end
return out
`)

func ms(t time.Time) string { return strconv.FormatInt(t.UnixMilli(), 10) }

func fromMS(v any) time.Time {
	var n int64
	switch x := v.(type) {
	case string:
		f, _ := strconv.ParseFloat(x, 64)
		n = int64(f)
	case int64:
		n = x
	case float64:
		n = int64(x)
	}
	return time.UnixMilli(n)
}

// recordFields is the number of values a script returns per agent: {d, reg, hb, exp, ls,
// la, o}.
const recordFields = 7

// decodeAgent rebuilds an Agent from the {d, reg, hb, exp, ls, la, o} strings a script
// returns (missing or nil ls and la read as an unknown lifecycle, a missing o as no owner:
// records written before the owner existed).
func decodeAgent(vals []any) (Agent, error) {
	if len(vals) < 4 {
		return Agent{}, errors.New("registry: short record from redis")
	}
	d, _ := vals[0].(string)
	var a Agent
	if err := json.Unmarshal([]byte(d), &a); err != nil {
		return Agent{}, fmt.Errorf("registry: corrupt record in redis: %w", err)
	}
	a.RegisteredAt, a.LastHeartbeat, a.ExpiresAt = fromMS(vals[1]), fromMS(vals[2]), fromMS(vals[3])
	if len(vals) >= 6 {
		a.Lifecycle = decodeLifecycle(vals[4], vals[5])
	}
	if len(vals) >= recordFields {
		a.Owner, _ = vals[6].(string)
	}
	return a, nil
}

// encodeLifecycle is the inverse of decodeLifecycle: the ls and la hash fields.
func encodeLifecycle(l Lifecycle) (ls, la string) {
	switch {
	case l.Accepting == nil:
	case *l.Accepting:
		la = "1"
	default:
		la = "0"
	}
	return l.State, la
}

// decodeLifecycle reads the ls and la hash fields (nil or "" when unknown).
func decodeLifecycle(ls, la any) Lifecycle {
	var l Lifecycle
	l.State, _ = ls.(string)
	switch s, _ := la.(string); s {
	case "1":
		l.Accepting = boolPtr(true)
	case "0":
		l.Accepting = boolPtr(false)
	}
	return l
}

// Register implements Store.
func (s *RedisStore) Register(ctx context.Context, a Agent) (*Agent, error) {
	ls, la := encodeLifecycle(a.Lifecycle)
	args := []any{s.prefix, a.ID, string(a.descriptor()), ms(a.LastHeartbeat), ms(a.ExpiresAt), ls, la, a.Owner, a.Name, s.graceMS()}
	for _, c := range a.Capabilities {
		args = append(args, c)
	}
	res, err := registerScript.Run(ctx, s.c, nil, args...).Slice()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if len(res) == 3 && res[0] == "held" {
		holder, _ := res[1].(string)
		return nil, &NameHeldError{Name: a.Name, Holder: holder, ByID: res[2] == "1"}
	}
	prev, err := decodeAgent(res)
	if err != nil {
		return nil, err
	}
	return &prev, nil
}

// Heartbeat implements Store.
func (s *RedisStore) Heartbeat(ctx context.Context, id string, now, expires time.Time, lc *Lifecycle) (Lifecycle, error) {
	set, ls, la := "0", "", ""
	if lc != nil {
		set = "1"
		ls, la = encodeLifecycle(*lc)
	}
	res, err := heartbeatScript.Run(ctx, s.c, nil, s.prefix, id, ms(now), ms(expires), set, ls, la).Slice()
	switch {
	case errors.Is(err, redis.Nil):
		return Lifecycle{}, ErrNotFound
	case err != nil:
		return Lifecycle{}, err
	case len(res) < 2:
		return Lifecycle{}, nil
	}
	return decodeLifecycle(res[0], res[1]), nil
}

// Deregister implements Store.
func (s *RedisStore) Deregister(ctx context.Context, id string) (Agent, error) {
	res, err := deregisterScript.Run(ctx, s.c, nil, s.prefix, id, s.graceMS()).Slice()
	if errors.Is(err, redis.Nil) {
		return Agent{}, ErrNotFound
	}
	if err != nil {
		return Agent{}, err
	}
	return decodeAgent(res)
}

// PopExpired implements Store.
func (s *RedisStore) PopExpired(ctx context.Context, now time.Time, limit int) ([]Agent, error) {
	res, err := popExpiredScript.Run(ctx, s.c, nil, s.prefix, ms(now), limit, s.graceMS()).Slice()
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, err
	}
	out := make([]Agent, 0, len(res)/recordFields)
	for i := 0; i+recordFields <= len(res); i += recordFields {
		a, err := decodeAgent(res[i : i+recordFields])
		if err != nil {
			return out, err
		}
		out = append(out, a)
	}
	return out, nil
}

// fetch loads agents by id (in order), skipping absent ones and ended leases.
func (s *RedisStore) fetch(ctx context.Context, ids []string, now time.Time) ([]Agent, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	pipe := s.c.Pipeline()
	hs := make([]*redis.SliceCmd, len(ids))
	for i, id := range ids {
		hs[i] = pipe.HMGet(ctx, s.prefix+"agent:"+id, "d", "reg", "hb", "ls", "la", "o")
	}
	exps := pipe.ZMScore(ctx, s.prefix+"leases", ids...)
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, err
	}
	scores := exps.Val()
	out := make([]Agent, 0, len(ids))
	for i := range ids {
		v := hs[i].Val()
		if len(v) < 6 || v[0] == nil || i >= len(scores) || scores[i] == 0 {
			continue
		}
		a, err := decodeAgent([]any{v[0], v[1], v[2], scores[i], v[3], v[4], v[5]})
		if err != nil {
			return nil, err
		}
		if a.ExpiresAt.After(now) {
			out = append(out, a)
		}
	}
	return out, nil
}

// Get implements Store.
func (s *RedisStore) Get(ctx context.Context, id string, now time.Time) (Agent, error) {
	as, err := s.fetch(ctx, []string{id}, now)
	if err != nil {
		return Agent{}, err
	}
	if len(as) == 0 {
		return Agent{}, ErrNotFound
	}
	return as[0], nil
}

// Discover implements Store. It walks, in id order, the smallest of the required
// capability indexes and, with q.Name, the name's index (or every id), a page at a time,
// keeps ids present in the other required indexes, loads those agents and applies the name and tag filters, until
// Limit+1 matches are found (the extra one says "more").
func (s *RedisStore) Discover(ctx context.Context, q Query, now time.Time) ([]Agent, bool, error) {
	walk := s.prefix + "ids"
	var others []string
	keys := make([]string, 0, len(q.Capabilities)+1)
	for _, c := range q.Capabilities {
		keys = append(keys, s.prefix+"cap:"+c)
	}
	if q.Name != "" {
		keys = append(keys, s.prefix+"byname:"+q.Name)
	}
	if len(keys) > 0 {
		pipe := s.c.Pipeline()
		cards := make([]*redis.IntCmd, len(keys))
		for i, k := range keys {
			cards[i] = pipe.ZCard(ctx, k)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return nil, false, err
		}
		smallest := 0
		for i := range cards {
			if cards[i].Val() == 0 {
				return nil, false, nil // a required capability (or the name) nobody has
			}
			if cards[i].Val() < cards[smallest].Val() {
				smallest = i
			}
		}
		walk = keys[smallest]
		others = append(keys[:smallest:smallest], keys[smallest+1:]...)
	}
	page := int64(min(max(q.Limit+1, 32), 1000))
	out := make([]Agent, 0, q.Limit+1)
	after := q.After
	for len(out) <= q.Limit {
		lo := "-"
		if after != "" {
			lo = "(" + after
		}
		batch, err := s.c.ZRangeByLex(ctx, walk, &redis.ZRangeBy{Min: lo, Max: "+", Count: page}).Result()
		if err != nil {
			return nil, false, err
		}
		if len(batch) == 0 {
			break
		}
		after = batch[len(batch)-1]
		if len(others) > 0 {
			if batch, err = s.inAll(ctx, batch, others); err != nil {
				return nil, false, err
			}
		}
		as, err := s.fetch(ctx, batch, now)
		if err != nil {
			return nil, false, err
		}
		for _, a := range as {
			if (q.Name == "" || a.Name == q.Name) && (q.NamePrefix == "" || strings.HasPrefix(a.Name, q.NamePrefix)) && (q.Tag == "" || a.hasTag(q.Tag)) &&
				(!q.AcceptingOnly || a.Lifecycle.AcceptsCalls()) {
				out = append(out, a)
			}
		}
		if int64(len(batch)) < page && len(others) == 0 {
			break
		}
	}
	more := len(out) > q.Limit
	if more {
		out = out[:q.Limit]
	}
	return out, more, nil
}

// inAll keeps the ids that are members of every key (capability indexes score 1).
func (s *RedisStore) inAll(ctx context.Context, ids, keys []string) ([]string, error) {
	pipe := s.c.Pipeline()
	cmds := make([]*redis.FloatSliceCmd, len(keys))
	for i, k := range keys {
		cmds[i] = pipe.ZMScore(ctx, k, ids...)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, err
	}
	kept := ids[:0:0]
	for i, id := range ids {
		ok := true
		for _, c := range cmds {
			if v := c.Val(); i >= len(v) || v[i] == 0 {
				ok = false
				break
			}
		}
		if ok {
			kept = append(kept, id)
		}
	}
	return kept, nil
}

// Count implements Store.
func (s *RedisStore) Count(ctx context.Context) (int, error) {
	n, err := s.c.ZCard(ctx, s.prefix+"leases").Result()
	return int(n), err
}

// Ping implements Store.
func (s *RedisStore) Ping(ctx context.Context) error { return s.c.Ping(ctx).Err() }

// Open checks that Redis answers (the registry's Run calls it before serving).
func (s *RedisStore) Open(ctx context.Context) error {
	if err := s.Ping(ctx); err != nil {
		return fmt.Errorf("redis at %s: %w", s.addr, err)
	}
	return nil
}

// Close implements Store.
func (s *RedisStore) Close() error { return s.c.Close() }

// Kind implements Store.
func (s *RedisStore) Kind() string { return "redis" }
