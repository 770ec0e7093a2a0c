// Package fleet makes every brood master of one application on one Redis
// into a fleet of hosts: agent jobs that run once per fleet under a lease
// with fencing epochs, fleet-wide messages, and each host's status.
// Importing it links it (and Redis, github.com/redis/go-redis/v9) into the
// program; framework.WithFleet(url) or $BROOD_FLEET_REDIS turns it on:
//
//	import _ "github.com/broodhq/brood/fleet"
//
// Only each host's agent talks to Redis, over one connection pool. HTTP
// serving never depends on it.
//
// # Leases
//
// One lease per fleet: its holder runs every job registered with
// agent.OncePerFleet. The holder renews it every Renew (default 2 s) for
// Lease (default 10 s); each change of holder increments the fencing epoch
// (agent.EpochFromContext), which only grows. The holder trusts its lease
// until Lease-Margin (Margin: Lease/10) after it sent the last renewal that
// succeeded, and ends its jobs' contexts then: since Redis keeps the lease
// Lease after it received that renewal, a holder that cannot renew (Redis
// unreachable, the process paused, a long GC) has stopped acting before
// another host can take over. Other hosts try to take the lease every
// Renew, so a holder that dies is replaced within Lease+Renew (12 s by
// default); a holder that stops gracefully or reloads gives it up at once
// and tells the others through the message stream, so they take it within
// a round trip. The URL's lease= and renew= parameters change the timing,
// e.g. redis://host:6379/0?lease=5s&renew=1s.
//
// On top of the lease, each tick is claimed once (SET NX on
// "job:NAME:TICK", TICK being the due time: for Every jobs rounded to the
// interval's grid, which every host shares), so even two hosts that both
// believe they lead cannot run one tick twice. A host that loses the lease
// during a tick runs nothing more; a tick that no host held the lease for
// is skipped, not caught up.
//
// # Messages
//
// messenger.Messenger.BroadcastFleet reaches the agent and every worker of
// every host, the sender's included, at least once to every host that is
// up, in order per sender. A message goes to the sender's agent, which adds
// it to one Redis Stream per fleet (trimmed to about StreamMax entries);
// every agent reads the stream from the last id it saw and broadcasts each
// message on its host, so a host cut off from Redis for a while gets what
// was sent meanwhile. While Redis is unreachable, up to Backlog messages
// wait in the sender's agent. A received message's PID is that of the
// receiving host's agent.
//
// # Status
//
// Each agent publishes its host's status (host, address, master pid,
// generation, workers, uptime, whether it leads) every Renew with a TTL of
// three Renews; `broodctl status --fleet` lists every host.
//
// # Redis keys
//
// "brood:{NAME}:fleet:" followed by lease, epoch, tick:JOB:TICK, msgs and
// host:ID, NAME being the application's (WithName), so that applications
// sharing one Redis never see each other.
//
// # Redis unreachable
//
// Jobs pause once the lease lapses (said once in the log), messages wait,
// and everything resumes by itself when Redis answers again; at startup
// too, the master starts and serves, and the agent keeps trying.
package fleet
