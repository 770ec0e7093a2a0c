// Package pidfile writes the master's pid to a file for tools that want one
// (init scripts, monitoring, "kill -HUP $(cat app.pid)"), and keeps two
// masters from sharing one.
//
// Write refuses a file naming a live process other than us, and replaces a
// stale one (a pid no longer running, or contents that are not a pid),
// reporting what it replaced so the caller can log it. The file appears
// whole or not at all: it is written under a temporary name in the same
// directory and then linked or renamed into place, so a reader never sees
// an empty or half-written file. Remove deletes the file only while it still
// holds our pid, so a master that outlived its pid file's takeover does not
// delete its successor's.
//
// A pid is reused once its process is gone, so a stale file can name a live,
// unrelated process; Write then refuses, and the error says to remove the
// file. Under systemd a pid file is unnecessary: systemd knows the main pid.
package pidfile
