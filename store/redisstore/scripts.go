package redisstore

import "github.com/redis/go-redis/v9"

// Every write script takes KEYS = the key, the version counter, the key
// index, the expiry index; ARGV[1] is the key without the namespace (the
// indexes' member), and a ttl is milliseconds, 0 for no expiry. The key
// index (a sorted set, all scores 0) is what List reads in key order; the
// expiry index (scores: when, in Unix ms) is what the sweeper reads to
// take expired keys out of the key index. Both change with the key, in
// the same script, so they stay exact.

// nowMs is Redis's clock in Unix milliseconds (a Lua number holds it
// exactly).
const nowMs = `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
`

// expire gives KEYS[1] the ttl ARGV[i] and keeps the expiry index in step.
const expire = `local function expire(ttl)
  if tonumber(ttl) > 0 then
    redis.call('PEXPIRE', KEYS[1], ttl)
    redis.call('ZADD', KEYS[4], now + tonumber(ttl), ARGV[1])
  else
    redis.call('PERSIST', KEYS[1])
    redis.call('ZREM', KEYS[4], ARGV[1])
  end
end
`

// setScript: ARGV = member, value, ttl.
var setScript = redis.NewScript(nowMs + expire + `
redis.call('HSET', KEYS[1], 'v', ARGV[2], 'n', redis.call('INCR', KEYS[2]))
redis.call('ZADD', KEYS[3], 0, ARGV[1])
expire(ARGV[3])
return 1
`)

// incrScript: ARGV = member, delta, ttl. Returns the sum as text, or
// HINCRBY's error.
var incrScript = redis.NewScript(nowMs + expire + `
local existed = redis.call('EXISTS', KEYS[1])
local r = redis.pcall('HINCRBY', KEYS[1], 'v', ARGV[2])
if type(r) == 'table' and r.err then
  return r
end
redis.call('HSET', KEYS[1], 'n', redis.call('INCR', KEYS[2]))
if existed == 0 then
  redis.call('ZADD', KEYS[3], 0, ARGV[1])
  expire(ARGV[3])
end
-- As text: Lua numbers are doubles, which would round a large sum.
return redis.call('HGET', KEYS[1], 'v')
`)

// casScript: ARGV = member, value, version ("0": must be absent), ttl.
// Returns 1 if it wrote.
var casScript = redis.NewScript(nowMs + expire + `
local cur = redis.call('HGET', KEYS[1], 'n')
if (cur == false and ARGV[3] ~= '0') or (cur ~= false and cur ~= ARGV[3]) then
  return 0
end
redis.call('HSET', KEYS[1], 'v', ARGV[2], 'n', redis.call('INCR', KEYS[2]))
redis.call('ZADD', KEYS[3], 0, ARGV[1])
expire(ARGV[4])
return 1
`)

// deleteScript: KEYS = the key, the key index, the expiry index; ARGV =
// member.
var deleteScript = redis.NewScript(`
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
return 1
`)

// lookupScript returns {value, version, pttl} or nil.
var lookupScript = redis.NewScript(`
local r = redis.call('HMGET', KEYS[1], 'v', 'n')
if not r[1] then
  return false
end
return {r[1], r[2], redis.call('PTTL', KEYS[1])}
`)

// sweepScript: KEYS = the key index, the expiry index; ARGV = how many at
// most. Takes keys whose expiry has passed (Redis removed the keys
// themselves) out of both indexes and returns how many.
var sweepScript = redis.NewScript(nowMs + `
local gone = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
for _, m in ipairs(gone) do
  redis.call('ZREM', KEYS[1], m)
  redis.call('ZREM', KEYS[2], m)
end
return #gone
`)
