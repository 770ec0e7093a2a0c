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
// # Where the code runs
//
// This package holds what users call: Run, the options, their resolution
// and validation, the exported errors and ServerLimits. Each process's
// runtime lives in its own internal package, given a small config that Run
// builds once from the resolved options:
//
//   - internal/master: the master's loop, children, slots, generations,
//     reload and scaling, health checks, message routing, log-reopen
//     rounds, the control socket, the pidfile and sd_notify;
//   - internal/agentproc: the agent's hooks, scheduler, job status and log
//     rotation;
//   - internal/worker: a worker's socket takeover, http.Server, heartbeat,
//     drain and middleware chain;
//   - internal/child: a child's link to its master (fd 3), shared by both
//     child roles;
//   - internal/protocol: what master and children say to each other;
//   - internal/proclog: every process's root logger and log files.
//
// A child ignores SIGINT, SIGQUIT, SIGHUP, SIGTTIN, SIGTTOU and SIGUSR1,
// which are the master's to act on (Ctrl-C signals the whole process
// group); SIGTERM to a child alone stops that child gracefully, and the
// master replaces it. A child whose channel reaches end of file exits: its
// master is gone. On Linux the kernel also kills it then (Pdeathsig).
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
