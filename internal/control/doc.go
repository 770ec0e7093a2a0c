// Package control is the master's control socket: a Unix socket on which
// local operators (broodctl, or anything that speaks a line of JSON) ask for
// the cluster's status and for reloads, stops, scaling and log reopening.
//
// # Where
//
// The default path is DefaultPath(app, port):
//
//	$XDG_RUNTIME_DIR/brood/<app>-<port>.sock   when XDG_RUNTIME_DIR is a private directory of ours
//	$TMPDIR/brood-<uid>/<app>-<port>.sock       otherwise
//
// The environment variable BROOD_CONTROL_SOCKET (EnvSocket) names another
// path for the master and broodctl alike. The socket is mode 0600. Listen
// creates a missing directory with mode 0700, and refuses a directory it
// created that is not owned by us or that others may write: whoever can
// write there could put their socket in place of ours. When the default
// directory is such a one (another local user made $TMPDIR/brood-<uid>
// first), Listen does not refuse to start: it makes a fresh private
// directory $TMPDIR/brood-<uid>.XXXX instead, says so in the log, and
// removes it at Close; SearchDirs lists it for broodctl. A directory you
// chose and made yourself is used as it is.
//
// # Whom to trust
//
// Both ends apply the same checks. Do refuses a socket in a default
// directory that fails them (CheckDir, on Lstat: a planted symlink is not
// followed), and on Linux reads the peer's credentials (SO_PEERCRED): the
// master must run as our uid or as root, or Do sends nothing
// (ErrUntrusted). The server refuses clients of any other uid, in case the
// socket's mode or directory was loosened. Elsewhere the file mode and the
// directory are the only guard.
//
// A request carries the client's deadline. One the server reads after it
// (the master was stopped with SIGSTOP, say, and continued later) is
// refused unheard, and the handler's context ends at it, so a command the
// master had not begun when broodctl gave up and said so is not carried out
// later. One begun just before can still finish after the client stopped
// waiting; Do's timeout error says so.
//
// Socket paths are limited to 107 bytes on Linux (103 on the BSDs and
// macOS); Listen says so rather than failing with "invalid argument".
//
// # Protocol
//
// A client connects, writes one JSON object on one line, and reads one JSON
// object on one line; then the server closes the connection. Nothing else:
// no framing, no versions, no sessions, so socat, nc and a ten-line script
// in any language are clients too. Unknown fields are ignored both ways, so
// an older broodctl can talk to a newer master.
//
// Requests are {"cmd": C} with C one of status, reload, stop, reopen-logs,
// or {"cmd": "scale", "n": N}. Responses are {"ok": true} with an optional
// "message" and, for status, a "status" object (see Status), or
// {"ok": false, "error": "..."} naming what was wrong. A request larger than
// 64 KiB, one not sent within 5 seconds, malformed JSON or an unknown
// command is answered with an error, never by crashing the master.
//
//	$ echo '{"cmd":"status"}' | socat - UNIX-CONNECT:$XDG_RUNTIME_DIR/brood/hello-8080.sock
//	{"ok":true,"status":{"app":"hello","addr":"[::]:8080","started":"2025-01-02T10:00:00Z","generation":1,"workers":2,"processes":[{"role":"master","pid":4100,...}]}}
//	$ echo '{"cmd":"scale","n":4}' | nc -U $XDG_RUNTIME_DIR/brood/hello-8080.sock
//	{"ok":true,"message":"scaling to 4 workers"}
//	$ echo '{"cmd":"restart"}' | nc -U $XDG_RUNTIME_DIR/brood/hello-8080.sock
//	{"ok":false,"error":"unknown command \"restart\"; want one of status, reload, stop, scale, reopen-logs"}
//
// The socket is only as safe as its file mode: anyone who can connect can
// stop the server. That is the same power as sending it signals, which is
// why the socket belongs to the user that runs the master and nobody else.
//
// # Handlers
//
// Commands that start long operations (reload, stop, scale) should answer
// as soon as the operation has started, with a message saying so: the
// client waits on the connection, and a handler that waits for the server
// it runs in to close would only end when Close gives up on it.
package control
