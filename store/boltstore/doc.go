// Package boltstore is the agent's store.Store: an embedded bbolt database
// (go.etcd.io/bbolt) in one file, written by one goroutine that commits
// writes in groups.
//
// # Durability
//
// A write returns once the transaction holding it is committed to the file.
// By default commits are not fsynced: what was acknowledged survives the
// death of any process (the kernel has it), not a power cut or a kernel
// crash. With Options.Sync every commit is fsynced before its writes are
// acknowledged, which survives those too. Either way writes that arrive
// while a commit is under way wait for it and go together into the next
// one (group commit), so a busy store pays one commit, and with Sync one
// fsync, per group rather than per write; a lone write is committed at once,
// without waiting for company.
//
// # Expiry
//
// Every key with a TTL also has an entry in an index ordered by expiry. An
// expired key is never returned; a sweeper removes expired keys every
// Options.SweepEvery, so the file's live data stays bounded by the live
// keys (bbolt reuses freed pages; the file itself does not shrink).
//
// # Failures
//
// A second Open of the same file, from this process or another, waits
// Options.LockTimeout for the first to close it and then fails with
// ErrLocked. A file that is not a bbolt database, or is one that brood did
// not create, fails with ErrForeign, naming the file. A commit the disk
// refuses (it is full, say) fails the writes in it with an error wrapping
// store.ErrUnavailable and the system's error; nothing acknowledged before
// is lost, reads keep working, and writes work again once there is room.
//
// bbolt checks the file's meta pages when it opens it, not every page:
// damage in the middle of a file (a disk fault) may only show when that
// page is read, as a panic bbolt raises; Check reads every page.
package boltstore
