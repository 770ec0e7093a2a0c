// Package logfile lets several processes append JSON lines to the same log
// files, and lets one of them rotate those files without losing or
// duplicating a line.
//
// In brood the master, the agent and every worker open app.log (slog
// records) and access.log (one line per request) in the same directory with
// [Open]. The agent alone rotates them with a [Rotator].
//
// # Guarantees
//
//   - Each [File.Write] is one write(2) on a descriptor opened with O_APPEND.
//     On a local file system the kernel appends the whole buffer at the end
//     of the file under the inode lock, so a write from one process never
//     lands inside a write from another. Callers keep lines whole by writing
//     one or more complete lines per call; [NewJSONHandler] does.
//   - Within a process, writes are serialised, and [File.Reopen] swaps the
//     descriptor between two writes: a write under way finishes into the old
//     file, every later one goes to the new file, and when Reopen returns the
//     process has stopped writing to the old file for good. No line is lost
//     or written twice. If the path cannot be opened, Reopen reports it and
//     the old file stays in use.
//   - File does not buffer. A write costs about one system call, around a
//     microsecond here (BenchmarkWrite), and a process that dies loses
//     nothing it had written.
//   - [File.Close] may be called more than once; writes after it fail with
//     an error wrapping [io/fs.ErrClosed].
//
// # Trouble
//
// A server must not stop because of its logs, and lines it cannot keep must
// not vanish unnoticed. Files opened with [OpenWith] (brood opens every
// process's files so) recreate a deleted directory, write to a fallback
// (stderr) while the path cannot be opened, notice within
// [Options.CheckEvery] that their file was deleted or replaced, and count
// the lines a failing write (a full disk) drops: the first loss is reported
// at once, then every [Options.ReportEvery] while it lasts, and its end with
// the total. Lines written between a deletion and the next check go to the
// deleted file and are lost uncounted.
//
// # Rotation protocol
//
// Rotation happens in three steps, and the third must wait for the second:
//
//  1. Rename. [Rotator.RotateIfNeeded] (polled, for size) or [Rotator.Rotate]
//     (for the daily schedule: sleep until [NextMidnight]) renames the live
//     file to a stamped name and returns a [Rotation], or nil when the file is
//     missing or empty and there is nothing to do. Processes that have the
//     file open keep appending to the renamed file, which is harmless.
//  2. Reopen everywhere. Tell every process that writes to the file,
//     the rotating one included, to call [File.Reopen]. brood broadcasts a
//     message; external logrotate instead does `mv` and sends SIGUSR1 to the
//     master, which does the same.
//  3. Complete. Once every process has confirmed that Reopen returned, call
//     [Rotation.Complete]: it deletes rotated files beyond [Rotator.Keep] and,
//     with [Rotator.Compress], gzips the renamed file and removes the
//     original. If the processes cannot confirm, use
//     [Rotation.CompleteAfter] with a grace period longer than any process
//     takes to reopen after being told. Compressing earlier would lose the
//     lines a slow process writes into the renamed file after it was read.
//
// Rotations may overlap: Complete never touches a file rotated after its own
// rename (its writers may not have reopened yet), and it finishes older
// rotated files left uncompressed by an interrupted run, since every writer
// has reopened since those were renamed. External logrotate needs the same
// ordering: use its delaycompress option.
//
// Rotated names are STEM-YYYYMMDDTHHMMSS.mmmZ.EXT in UTC (access.log becomes
// access-20240131T235959.123Z.log, then .log.gz). They sort in rotation
// order, and two rotations in the same second or millisecond get different
// names; an existing file is never overwritten.
//
// # Known limits
//
//   - O_APPEND atomicity is a property of local file systems (ext4, xfs,
//     btrfs, tmpfs). On NFS, O_APPEND is emulated by the client, and writes
//     from processes on different machines (or even different clients) can
//     overwrite or interleave. Keep log directories local.
//   - os.File.Write retries a short write with the remainder, as two system
//     calls. Regular files only write short when the disk is full or a file
//     size limit is hit, and then the tail of that line may be torn.
//   - A line must be written with one Write. Writing a line in pieces (for
//     example through a bufio.Writer that flushes mid-line) gives up the
//     guarantee.
//   - Only one process may rotate a given file; renames are not coordinated
//     between rotators (on Linux a colliding name is still never overwritten).
//   - Reopen of a File from [Open] opens the path; it does not create the
//     directory. One from [OpenWith] does.
//
// # Why it is public
//
// An application that writes a log file of its own from every worker (an
// audit trail, say) needs the same guarantees brood's files have: [Open]
// and [NewJSONHandler] give it whole lines from every process, and
// [Rotator] with the rotation protocol above lets it, or an external
// logrotate, rotate that file without losing a line.
package logfile
