// Package metrics serves a brood cluster's Prometheus metrics as if the
// cluster were one process.
//
// Instrument workers and the agent with client_golang as usual:
// prometheus.DefaultRegisterer, promauto, custom collectors, histograms
// (classic and native), exemplars. Every worker reports
// prometheus.DefaultGatherer to an aggregator in the agent whenever a
// scrape asks, and ReportInterval (one second) after its newest report
// when none asked; the aggregator merges the reports with the agent's own
// registry. The master stays out of it. A report is a delta against the
// one the agent holds: the families that did not change are named, not
// sent, and those that did are sent as the bytes that changed.
//
// # Where to scrape
//
// framework.WithMetricsAddr("127.0.0.1:9090") (or $BROOD_METRICS_ADDR)
// makes the agent serve /metrics (the cluster view) and /metrics/slots
// (the per-slot view) on that address, its own listener, not the
// application's port. Or mount Handler (and SlotHandler) on the router:
//
//	r.Handle("/metrics", metrics.Handler())
//
// Both negotiate the format as promhttp does: Prometheus text, protobuf or
// OpenMetrics, compressed when the scraper asks.
//
// # What each metric type does
//
//	type       cluster view (/metrics)                       per-slot view (/metrics/slots)
//	counter    summed across slots; never goes backwards     one series per slot
//	histogram  buckets, count and sum summed; native ones    one series per slot
//	           at the coarsest schema and widest zero bucket
//	gauge      by its policy: sum (default), max, min, or    one series per slot
//	           one series per slot (label slot)
//	summary    one series per slot; count and sum never      one series per slot
//	           go backwards, quantiles are the current pid's
//	untyped    one series per slot                           one series per slot
//
// Plus brood_scrape_slot_up{slot}: 1 if the slot's process answered this
// scrape in time, 0 if the scrape shows its last reported values (a slot
// whose worker left and was not replaced, scaled away say, shows 0 for ten
// minutes, then only its carried counts); and
// brood_scrape_type_conflict{family,slot} when slots disagree on a family's
// type (the type most slots report wins; the others' series are left out).
// The agent is the slot "agent". A series that already has a label slot
// gets brood_slot instead.
//
// Counters never go backwards: when a slot's worker is replaced (a crash,
// a hang kill, a rolling reload), its last reported values are carried
// forward for its slot, so a worker killed outright loses at most the
// increments since its last report. A series that resets within one
// process (lower than before) is carried forward the same way.
//
// Gauges describe the present: a slot that does not answer a scrape in
// time (DefaultScrapeTimeout) contributes its counters, histograms and
// summaries' count and sum, not its gauges. A gauge's policy is picked
// where it is registered, with a constant label that the aggregator
// removes:
//
//	promauto.NewGauge(prometheus.GaugeOpts{Name: "queue_depth", ConstLabels: metrics.Aggregate(metrics.Max)})
//
// The default is Sum (in-flight requests, memory, goroutines add up),
// except process_start_time_seconds, process_max_fds and
// process_virtual_memory_max_bytes (Min), go_gc_gogc_percent (Max) and any
// gauge named *_info (Max).
//
// # brood's own metrics
//
// Each worker (per slot in /metrics/slots, summed in /metrics):
//
//	brood_http_requests_total        counter  requests completed
//	brood_http_requests_in_flight    gauge    requests being served
//	brood_http_connections           gauge    open client connections
//	brood_http_connections_accepted_total  counter  client connections accepted
//	brood_accept_queue_length        gauge    connections waiting in the slot socket's accept queue (Linux)
//	brood_accept_queue_backlog       gauge    the accept queue's bound (Linux)
//	brood_accept_queue_shared_length   gauge  connections waiting on the socket all workers share (balance shared; Max)
//	brood_accept_queue_shared_backlog  gauge  that queue's bound (balance shared; Max)
//
// The agent's jobs (slot "agent"), by label job:
//
//	brood_agent_job_runs_total             counter  runs started
//	brood_agent_job_failures_total         counter  runs that returned an error or panicked
//	brood_agent_job_skipped_total          counter  ticks dropped while the previous run went on
//	brood_agent_job_last_duration_seconds  gauge    the latest finished run's duration
//	brood_agent_job_running                gauge    1 while a run goes on
//	brood_agent_job_duration_seconds       histogram  runs' durations, by job and result (ok, error)
//
// What the master counts, sent to the agent every housekeeping tick (so up
// to a second old) and shown as the agent's (process is "agent" or a
// worker's slot):
//
//	brood_workers_ready              gauge    workers ready to serve
//	brood_workers_wanted             gauge    workers the master runs or restarts
//	brood_restarts_total{process}    counter  restarts after an unexpected exit
//	brood_hang_kills_total{process}  counter  workers replaced as hung
//	brood_recycles_total{process}    counter  workers replaced after max requests or over max RSS
//	brood_reloads_total{result}      counter  reloads: ok, rolled_back, failed, refused
//	brood_rollbacks_total            counter  reloads that began rolling back
//
// A new agent is sent the counts less those its predecessor was sent,
// since the aggregator carries the predecessor's forward.
//
// They are read from counters the processes keep anyway, at each gather: a
// request costs nothing more. The Go and process collectors of
// prometheus.DefaultRegisterer come with every process.
//
// # A scrape never hangs
//
// The aggregator asks every worker in parallel, with DefaultScrapeTimeout;
// a worker that is slow, stopped or dying is shown with its last report and
// brood_scrape_slot_up 0. Scrapes that arrive while one is collecting share
// its collection.
//
// # Known limits
//
// The carried-forward values live in the agent, which saves them (on stop,
// when a worker's pid is retired, and every five seconds when they changed)
// to a file named after the master's pid in $XDG_RUNTIME_DIR or the
// temporary directory; the next agent (after a reload, or a crash) carries
// on from it. An agent killed outright loses what changed since its last
// save: a worker that died in those seconds may take back its last
// increments. While the agent restarts, its listener is down (that scrape
// fails); Handler on the router waits for the new agent instead.
// A pid the system gives to a new worker is told from the old one by the
// run its reports name (a worker of a version before runs names none: its
// new process is taken for the old one until its seqs pass the old ones').
// Differing classic bucket layouts are merged at the union of the bounds,
// a process's count at a bound it lacks taken at its next lower bound.
// Native histograms with custom buckets (schema -53) are merged as classic
// ones only. Explicit sample timestamps and created timestamps are dropped
// (a merged counter has no single creation time). The master's Go and
// process metrics are not included, only its counts above.
//
// The code before framework.Run runs in every process, so a metric
// registered there exists in the agent too, at zero unless the agent sets
// it: harmless for sums, but a Min gauge then reads 0. Register such
// gauges in a WithApp hook, or give them PerSlot.
//
// Handler fetches the view from the agent through the messenger, so a view
// larger than the message limit (framework.WithMaxMessageSize, 16 MiB)
// fails there; the agent's own listener has no such limit. Each worker's
// report is bounded the same way.
package metrics
