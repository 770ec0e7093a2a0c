// Package proclog builds a brood process's one root logger and opens its
// log files: the console (tint at a terminal, JSON otherwise) or, with a
// log directory, app.log and, in workers, access.log, each process writing
// its own lines with O_APPEND. Every role's Run gets its logger from here.
package proclog
