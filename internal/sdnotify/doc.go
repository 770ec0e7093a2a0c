// Package sdnotify tells systemd (or any service manager speaking its
// notify protocol) how the service is doing: ready, reloading, stopping,
// and a status line for "systemctl status".
//
// The protocol is one datagram of newline-separated KEY=VALUE lines sent to
// the Unix socket named by $NOTIFY_SOCKET: a path, or an abstract-namespace
// name when it starts with '@' (Linux only). When the variable is unset the
// service is not under systemd and every call is a no-op returning nil.
//
// Why not github.com/coreos/go-systemd: its module also holds the D-Bus,
// journal and unit-file packages, so requiring it adds
// github.com/godbus/dbus to every brood user's go.mod for what is forty
// lines of standard library here.
//
// # A unit for a brood server
//
//	[Service]
//	# systemd 253 and later. systemd sends SIGHUP for "systemctl reload" and
//	# waits for RELOADING=1 then READY=1, so reload returns when the new
//	# workers serve (or fails when they could not start).
//	Type=notify-reload
//	# Older systemd: Type=notify with
//	# ExecReload=/bin/kill -HUP $MAINPID
//	# (brood still sends RELOADING=1 and READY=1, so the unit shows
//	# "reloading" until the new workers serve, but "systemctl reload"
//	# returns at once.)
//	ExecStart=/usr/local/bin/myapp
//	Environment=PORT=8080
//	# Only the master's notifications count; workers inherit nothing useful.
//	NotifyAccess=main
//	# SIGTERM to the master only: it stops the workers in order, letting them
//	# finish their requests, then the agent. Anything still alive when
//	# TimeoutStopSec ends gets SIGKILL. With the default control-group mode
//	# every child would get SIGTERM at the same moment as the master.
//	KillMode=mixed
//	KillSignal=SIGTERM
//	# Longer than brood's shutdown timeout, so systemd does not cut a
//	# graceful stop short.
//	TimeoutStopSec=45s
//	Restart=on-failure
//
// The master should remove NOTIFY_SOCKET (EnvSocket) from its children's
// environment: only it speaks for the service, and with NotifyAccess=main
// systemd would log every child's message as rejected.
//
// # Reloads
//
// With Type=notify-reload systemd compares the MONOTONIC_USEC that comes
// with RELOADING=1 against the time it sent the signal, and ignores a
// RELOADING=1 without it (systemctl reload then returns early or times out),
// so Reloading sends both. After RELOADING=1 the service must send READY=1
// when the reload is over, whether it succeeded or was rolled back.
package sdnotify
