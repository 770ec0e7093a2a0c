// Package memstore is a store.Store in this process's memory: what the
// agent falls back to when it cannot write its data directory (nothing
// survives the agent), and a store for tests of handlers outside a cluster
// (app.Config.Store).
//
// Expired keys are never returned and are swept every SweepEvery. List
// sorts the matching keys on every call, so it costs time in proportion to
// the number of keys: fine for a fallback and for tests, which is all this
// package is for.
package memstore
