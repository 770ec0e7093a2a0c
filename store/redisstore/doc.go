// Package redisstore is a store.Store in Redis (github.com/redis/go-redis/v9),
// for clusters on several hosts that share state.
//
// Importing it registers the redis:// and rediss:// schemes, so that
// framework.WithStore("redis://127.0.0.1:6379/0") or
// $BROOD_STORE=redis://... makes the agent keep the cluster's store there;
// workers still reach it through the agent, so only the agent of each host
// talks to Redis:
//
//	import _ "github.com/broodhq/brood/store/redisstore"
//
// # Layout
//
// Each key is a Redis hash named NAMESPACE + key, with the value in field
// "v" and the version in field "n", and the TTL as the Redis key's expiry.
// The namespace is "brood:{NAME}:", NAME being the application's name
// (query-escaped), so that two applications can share one Redis; the braces
// make NAME a hash tag, which keeps an application's keys in one Redis
// Cluster slot. Beside the keys, "brood:{NAME}#version" counts versions (so
// they are never reused), and two sorted sets index the keys:
// "brood:{NAME}#keys" in key order, for List, and "brood:{NAME}#expiry" by
// expiry, for the sweeper, which takes keys Redis has expired out of the
// index every SweepEvery. Every write is one Lua script, atomic in Redis,
// that changes the key and both indexes together. Counters use HINCRBY, so
// Redis's integer rules apply, which are also store.ParseInt's.
//
// # Failures
//
// Dial, read, write and pool waits are bounded (DefaultTimeout unless the
// URL says otherwise: dial_timeout, read_timeout, ...), so a Redis that is
// down fails each call within about that, with an error wrapping
// store.ErrUnavailable that names the address. go-redis reconnects by
// itself: once Redis is back, calls succeed again.
//
// List reads the key index from the first key it may return, so it costs
// time in proportion to the keys it returns (and any expired in the last
// second, which it skips), not to the database.
package redisstore
