// Package framework runs an HTTP application as a brood cluster: a master
// that supervises, one agent for work that must happen once per machine, and
// N workers serving the application's handler on per-slot SO_REUSEPORT
// sockets, so that the kernel balances connections and nothing sits in the
// data path.
//
//	func main() {
//		r := chi.NewRouter()
//		r.Get("/", hello)
//		if err := framework.Run(r,
//			framework.WithAgent(setupAgent), // runs only in the agent
//			framework.WithApp(setupApp),     // runs only in each worker
//		); err != nil {
//			os.Exit(1)
//		}
//	}
//
// Run looks at $BROOD_ROLE: unset, the process is the master, which
// re-executes its own binary for the agent and each worker; set by a master,
// Run plays that role. Code before Run runs in every process, so keep it
// cheap.
//
// # The master
//
// One goroutine (the loop in master.go) owns every piece of state: the
// children, the slots, the reload in progress. Everything else reaches it
// through events: each child has a reader goroutine (which routes messages
// itself, off the loop, and forwards control frames) and a waiter goroutine
// (which reports the exit); timers and the control socket post events too.
//
// Each worker slot has a socket the master binds at startup and keeps until
// it exits: closing a SO_REUSEPORT socket resets the connections in its
// accept queue, so a slot's socket outlives its workers. A replacement, a
// reloaded worker or a worker that took over a retired slot (scale.go)
// inherits the socket; the one it replaces stops accepting, answers its
// keep-alive clients with Connection: close, finishes its requests and
// exits (worker.go, serving.go).
//
// Reloads, scaling, hang detection and recycling all go through one path,
// replace and promote in rolling.go: start a successor, wait until it is
// ready, then drain the old one.
//
// # Children
//
// A child inherits its channel to the master as fd 3 (a Unix socketpair,
// framed by internal/wire) and, for workers, its sockets from fd 4 on. It
// ignores SIGINT, SIGQUIT, SIGHUP, SIGTTIN, SIGTTOU and SIGUSR1, which are
// the master's to act on (Ctrl-C signals the whole process group); SIGTERM
// to a child alone stops that child gracefully, and the master replaces it.
// A child whose channel reaches end of file exits: its master is gone. On
// Linux the kernel also kills it then (Pdeathsig), which is why children are
// started from one locked OS thread (spawn.go).
//
// # Known limits
//
//   - Linux is the platform brood is built and measured on. Other Unix
//     systems run it without the parent-death signal and without the
//     memory limit; Windows cannot pass sockets to children and Run returns
//     an error there.
//   - A worker that serves a retired slot's socket (after a scale-down)
//     receives that slot's share of new connections as well as its own.
package framework
