// Package redisserver starts a redis-server (the Debian package) for a
// benchmark to compare brood against: on a free loopback port, persistence
// off, in a temporary directory it removes; and stops it by pid.
package redisserver
