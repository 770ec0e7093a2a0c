// Package storeagent runs the cluster's store (package store): in the
// agent, it opens the backend (Open) and answers the workers' calls for it
// (Serve); in a worker, Client is the store.Store that makes those calls.
//
// # Where the data lives
//
// Open picks, in order:
//
//   - a URL (framework.WithStore, $BROOD_STORE), opened by the backend
//     registered for its scheme (store/redisstore registers redis://);
//   - a bbolt database, store.db, and its write-ahead log, store.db.log
//     (store/boltstore), in the data directory (framework.WithDataDir,
//     $BROOD_DATA_DIR; the environment wins), which must be writable;
//   - with neither, the per-user default: $XDG_STATE_HOME/brood/NAME, or
//     ~/.local/state/brood/NAME, where NAME is the application's name
//     (framework.WithName). If that cannot be written, the agent logs a
//     warning saying so and keeps the store in memory (store/memstore):
//     it then lives as long as the agent does.
//
// A data directory already used by a running cluster fails Open after the
// lock timeout, naming the directory; a file there that is not a brood
// store fails it naming the file, without touching it. Both are boot
// errors: the master refuses to start, says why, and does not retry. A
// Redis that does not answer is not: the agent warns, the workers serve,
// store calls fail fast with store.ErrUnavailable until Redis is there.
//
// # Across the messenger
//
// Each operation is one messenger.CallAgent with action Action; request and
// reply are a compact binary encoding (codec.go), and the store's errors
// travel as codes, so errors.Is works in the worker as it does in the
// agent. Calls made while the agent restarts wait for the new agent (see
// package messenger). A call that reached an agent that died before it
// replied is tried again if running it twice does no harm (Get, Lookup,
// List, Set, Delete); Incr, SetIfAbsent and CompareAndSet fail instead with
// store.ErrUnavailable, because they may or may not have happened. A
// rolling reload fails no call.
package storeagent
