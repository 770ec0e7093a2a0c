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
// The namespace is "brood:" + the application's name (query-escaped) + ":",
// so that two applications can share one Redis; versions come from one
// counter per namespace ("brood:NAME#version"), so they are never reused.
// Writes that read first (Incr, SetIfAbsent, CompareAndSet) are Lua scripts,
// atomic in Redis. Counters use HINCRBY, so Redis's integer rules apply,
// which are also store.ParseInt's.
//
// # Failures
//
// Dial, read, write and pool waits are bounded (DefaultTimeout unless the
// URL says otherwise: dial_timeout, read_timeout, ...), so a Redis that is
// down fails each call within about that, with an error wrapping
// store.ErrUnavailable that names the address. go-redis reconnects by
// itself: once Redis is back, calls succeed again.
//
// List has no key index to seek in Redis: it SCANs the namespace for the
// prefix, which costs time in proportion to the keys of the whole Redis
// database, not the ones listed. It suits sessions' occasional listing, not
// a hot path.
package redisstore
