// Package boltstore is the agent's store.Store: an embedded bbolt database
// (go.etcd.io/bbolt) in one file, in front of which a write-ahead log (the
// file beside it, named as it with ".log") takes the writes, all made by one
// goroutine in groups.
//
// # Durability
//
// The writes that arrive together (the agent's batch from a worker, and
// whatever else is waiting) are one group: one frame appended to the log,
// with a CRC, and a write returns once its frame is written. Their changes
// are then kept in memory too, where reads find them, until a checkpoint
// writes everything the log holds into the database in one bbolt commit
// and empties the log: every Options.SweepEvery, and sooner when the
// pending changes reach 4 MiB or the log 16 MiB. A key written a thousand
// times between checkpoints is written to the database once.
//
// By default neither the log nor the database is fsynced: what was
// acknowledged survives the death of any process (the kernel has it), not
// a power cut or a kernel crash. With Options.Sync every frame is fsynced
// before its writes are acknowledged, and every checkpoint before the log
// is emptied, which survives those too, at the cost of an fsync per group
// (a lone write is written at once, without waiting for company).
//
// Open replays the log's whole frames over the database: a frame cut short
// or damaged (the process died writing it, none of its writes was
// acknowledged) ends the log there and is cut off.
//
// # Expiry
//
// Every key with a TTL also has an entry in the database's index ordered
// by expiry. An expired key is never returned; each periodic checkpoint
// also removes expired keys from the database, so that its live data stays
// bounded by the live keys (bbolt reuses freed pages; the file itself does
// not shrink).
//
// # Failures
//
// A second Open of the same file, from this process or another, waits
// Options.LockTimeout for the first to close it and then fails with
// ErrLocked. A file that is not a bbolt database, or is one that brood did
// not create, or a log that is not one, fails with ErrForeign, naming the
// file. A log write the disk refuses (it is full, say) fails the writes in
// it with an error wrapping store.ErrUnavailable and the system's error;
// nothing acknowledged before is lost, reads keep working, and writes work
// again once there is room. A checkpoint the disk refuses leaves the
// changes in the log and in memory, to be tried again; past 64 MiB of them,
// or 256 MiB of log (a disk with room for the log's small frames but not for
// the database to grow), writes fail too, so that memory and the log stay
// bounded, until a checkpoint succeeds.
//
// bbolt checks the file's meta pages when it opens it, not every page:
// damage in the middle of a file (a disk fault) may only show when that
// page is read, as a panic bbolt raises; Check reads every page.
package boltstore
