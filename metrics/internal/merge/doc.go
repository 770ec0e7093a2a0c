// Package merge turns the metric snapshots of a cluster's processes into
// one view, as if the cluster were one process.
//
// A Merger receives snapshots ([]*dto.MetricFamily, as a
// prometheus.Gatherer returns them) keyed by slot and pid (and the run
// that names the process, for a pid the system reused), and produces:
//
//   - Cluster: counters and histograms (classic and native) summed across
//     slots; gauges by their policy (sum by default, or max, min, or one
//     series per slot); summaries and untyped metrics one series per slot
//     (label "slot"); plus brood_scrape_slot_up{slot}.
//   - PerSlot: every series with a "slot" label, nothing summed.
//
// Cumulative values (counters, histograms, a summary's count and sum) never
// go backwards: each slot keeps a base that accumulates the last snapshot
// of every pid that left the slot (Retire), and of every series that reset
// under the same pid (a value lower than the one before). Snapshots carry a
// sequence number per pid, so one that arrives late (a periodic report
// overtaken by a scrape's pull) is ignored instead of looking like a reset.
//
// Gauges, untyped metrics and a summary's quantiles describe the present:
// they come from the newest pid of each slot, and only from slots whose
// last snapshot is not older than the cut-off the caller gives (the start
// of the scrape); a stale slot contributes its cumulative values only.
//
// A Merger is not safe for concurrent use; its owner serialises calls.
package merge
