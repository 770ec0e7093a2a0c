// Command broodctl talks to a running brood master over its control socket
// (see internal/control): status, top, reload, stop, scale N, reopen-logs,
// and pprof, which fetches a profile of the master, the agent or a worker
// (broodctl pprof worker 2 cpu -seconds 10 -o cpu.pb.gz) through the
// control socket, for go tool pprof.
//
// broodctl top is a live full-screen view (bubbletea and lipgloss; a
// refreshing table when the output is not a terminal). broodctl is a module
// of its own so that the terminal library stays out of the module graph of
// every application built with brood: build it with
// go -C cmd/broodctl build, test it with go -C cmd/broodctl test ./....
//
//	$ broodctl status
//	app hello  addr [::]:8080  generation 2  workers 2  up 1h00m
//	ROLE    SLOT  PID   STATE     UPTIME  RESTARTS  REQUESTS  RSS      GEN  QUEUED
//	master  -     4100  ready     1h00m   0         -         12.3MiB  2    -
//	agent   -     4101  ready     59m59s  1         -         8.1MiB   2    -
//	worker  1     4102  ready     2m12s   0         123456    21.0MiB  2    0
//	worker  2     4099  draining  1h00m   3         9120      19.4MiB  1    -
//	balance: busiest slot 1.86× the mean over 2 slots (132576 requests)
//	$ broodctl scale 4
//	$ broodctl status -json | jq '.processes[] | select(.role == "worker") | .pid'
//
// Without -socket it finds the master the way the master chose its socket:
// $BROOD_CONTROL_SOCKET, else -app and -port, else the only master running
// for this user in the default directory (or the private one a master
// uses when someone else made the default one first). Several running
// masters are listed so you can pick one.
//
// It trusts what the master trusts: a default directory that is not ours
// and private is skipped, with a note, and on Linux a socket served by
// another user than us or root is sent nothing. A command that times out
// (-timeout) is not carried out if the master had not begun it by then;
// the error says that one begun just before may still complete.
//
// Exit status: 0 done, 1 refused or unreachable, 2 wrong usage.
package main
