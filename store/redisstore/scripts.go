package redisstore

import "github.com/redis/go-redis/v9"

// Every script takes KEYS[1] = the key, KEYS[2] = the version counter.
// ARGV[ttl] is milliseconds, 0 for no expiry.

// setScript: ARGV = value, ttl.
var setScript = redis.NewScript(`
redis.call('HSET', KEYS[1], 'v', ARGV[1], 'n', redis.call('INCR', KEYS[2]))
if tonumber(ARGV[2]) > 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
else
  redis.call('PERSIST', KEYS[1])
end
return 1
`)

// incrScript: ARGV = delta, ttl. Returns the sum as text, or HINCRBY's
// error.
var incrScript = redis.NewScript(`
local existed = redis.call('EXISTS', KEYS[1])
local r = redis.pcall('HINCRBY', KEYS[1], 'v', ARGV[1])
if type(r) == 'table' and r.err then
  return r
end
redis.call('HSET', KEYS[1], 'n', redis.call('INCR', KEYS[2]))
if existed == 0 and tonumber(ARGV[2]) > 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
-- As text: Lua numbers are doubles, which would round a large sum.
return redis.call('HGET', KEYS[1], 'v')
`)

// casScript: ARGV = value, version ("0": must be absent), ttl. Returns 1 if
// it wrote.
var casScript = redis.NewScript(`
local cur = redis.call('HGET', KEYS[1], 'n')
if (cur == false and ARGV[2] ~= '0') or (cur ~= false and cur ~= ARGV[2]) then
  return 0
end
redis.call('HSET', KEYS[1], 'v', ARGV[1], 'n', redis.call('INCR', KEYS[2]))
if tonumber(ARGV[3]) > 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
else
  redis.call('PERSIST', KEYS[1])
end
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
