package metrics

import (
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/broodhq/brood/schedule"
)

// WorkerStats is what a worker counts of its own serving; the collectors
// read it at each gather, so a request costs nothing more.
type WorkerStats struct {
	Requests    uint64 // completed since the worker started
	InFlight    int64
	Connections int64  // open
	Accepted    uint64 // connections accepted since the worker started
	// The accept queue of the slot's socket, from AcceptQueue; left out
	// of the metrics unless HasQueue.
	Queued, Backlog int64
	HasQueue        bool
	// The accept queue of the socket every worker shares (balance shared),
	// which each worker sees whole; left out unless HasShared.
	SharedQueued, SharedBacklog int64
	HasShared                   bool
}

var (
	descRequests = prometheus.NewDesc("brood_http_requests_total",
		"Requests the workers have completed (per slot in /metrics/slots).", nil, nil)
	descInFlight = prometheus.NewDesc("brood_http_requests_in_flight",
		"Requests being served now.", nil, nil)
	descConns = prometheus.NewDesc("brood_http_connections",
		"Open client connections.", nil, nil)
	descAccepted = prometheus.NewDesc("brood_http_connections_accepted_total",
		"Client connections accepted.", nil, nil)
	descQueued = prometheus.NewDesc("brood_accept_queue_length",
		"Connections waiting in the accept queue of the workers' sockets (Linux).", nil, nil)
	descBacklog = prometheus.NewDesc("brood_accept_queue_backlog",
		"How many connections the accept queue of the workers' sockets holds at most (Linux).", nil, nil)
	// Every worker reports the one shared socket: the cluster's value is
	// their largest, not their sum, and stays while any worker is up.
	descSharedQueued = prometheus.NewDesc("brood_accept_queue_shared_length",
		"Connections waiting in the accept queue of the socket the workers share (balance shared, Linux).", nil, Aggregate(Max))
	descSharedBacklog = prometheus.NewDesc("brood_accept_queue_shared_backlog",
		"How many connections the accept queue of the shared socket holds at most (balance shared, Linux).", nil, Aggregate(Max))

	descJobRuns = prometheus.NewDesc("brood_agent_job_runs_total",
		"Runs of an agent job started.", []string{"job"}, nil)
	descJobFailures = prometheus.NewDesc("brood_agent_job_failures_total",
		"Runs of an agent job that returned an error or panicked.", []string{"job"}, nil)
	descJobSkipped = prometheus.NewDesc("brood_agent_job_skipped_total",
		"Ticks of an agent job dropped because its previous run was still going.", []string{"job"}, nil)
	descJobDuration = prometheus.NewDesc("brood_agent_job_last_duration_seconds",
		"How long the latest finished run of an agent job took.", []string{"job"}, nil)
	descJobRunning = prometheus.NewDesc("brood_agent_job_running",
		"1 while a run of the agent job is going.", []string{"job"}, nil)

	jobDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "brood_agent_job_duration_seconds",
		Help:    "How long the runs of an agent job took, by result (ok, error).",
		Buckets: prometheus.ExponentialBuckets(0.01, 4, 9), // 10 ms to about 11 min
	}, []string{"job", "result"})
)

// ObserveJob records one run of an agent job in
// brood_agent_job_duration_seconds; framework.Run gives it to the agent's
// scheduler (schedule.Options.OnFinish).
func ObserveJob(job string, took time.Duration, err error) {
	result := "ok"
	if err != nil {
		result = "error"
	}
	jobDuration.WithLabelValues(job, result).Observe(took.Seconds())
}

// RegisterWorker registers, in prometheus.DefaultRegisterer, brood's
// metrics of a worker, read from stats at each gather. framework.Run calls
// it in every worker. It fails if the application registered metrics of
// the same names.
func RegisterWorker(stats func() WorkerStats) error {
	return register(workerCollector(stats))
}

func workerCollector(stats func() WorkerStats) prometheus.Collector {
	return collectorFunc{
		descs: []*prometheus.Desc{descRequests, descInFlight, descConns, descAccepted, descQueued, descBacklog, descSharedQueued, descSharedBacklog},
		collect: func(ch chan<- prometheus.Metric) {
			s := stats()
			ch <- prometheus.MustNewConstMetric(descRequests, prometheus.CounterValue, float64(s.Requests))
			ch <- prometheus.MustNewConstMetric(descInFlight, prometheus.GaugeValue, float64(s.InFlight))
			ch <- prometheus.MustNewConstMetric(descConns, prometheus.GaugeValue, float64(s.Connections))
			ch <- prometheus.MustNewConstMetric(descAccepted, prometheus.CounterValue, float64(s.Accepted))
			if s.HasQueue {
				ch <- prometheus.MustNewConstMetric(descQueued, prometheus.GaugeValue, float64(s.Queued))
				ch <- prometheus.MustNewConstMetric(descBacklog, prometheus.GaugeValue, float64(s.Backlog))
			}
			if s.HasShared {
				ch <- prometheus.MustNewConstMetric(descSharedQueued, prometheus.GaugeValue, float64(s.SharedQueued))
				ch <- prometheus.MustNewConstMetric(descSharedBacklog, prometheus.GaugeValue, float64(s.SharedBacklog))
			}
		},
	}
}

// RegisterJobs registers, in prometheus.DefaultRegisterer, the agent's
// job metrics, read from status at each gather. framework.Run calls it in
// the agent. It fails if the application registered metrics of the same
// names.
func RegisterJobs(status func() []schedule.JobStatus) error {
	if err := register(jobDuration); err != nil {
		return err
	}
	return register(collectorFunc{
		descs: []*prometheus.Desc{descJobRuns, descJobFailures, descJobSkipped, descJobDuration, descJobRunning},
		collect: func(ch chan<- prometheus.Metric) {
			for _, j := range status() {
				running := 0.0
				if j.Running {
					running = 1
				}
				ch <- prometheus.MustNewConstMetric(descJobRuns, prometheus.CounterValue, float64(j.Runs), j.Name)
				ch <- prometheus.MustNewConstMetric(descJobFailures, prometheus.CounterValue, float64(j.Failures), j.Name)
				ch <- prometheus.MustNewConstMetric(descJobSkipped, prometheus.CounterValue, float64(j.Skipped), j.Name)
				ch <- prometheus.MustNewConstMetric(descJobDuration, prometheus.GaugeValue, j.LastDuration.Seconds(), j.Name)
				ch <- prometheus.MustNewConstMetric(descJobRunning, prometheus.GaugeValue, running, j.Name)
			}
		},
	})
}

// register adds c to the default registry once per process.
func register(c prometheus.Collector) error {
	if err := prometheus.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if !errors.As(err, &are) {
			return fmt.Errorf("register brood's metrics: %w", err)
		}
	}
	return nil
}

type collectorFunc struct {
	descs   []*prometheus.Desc
	collect func(chan<- prometheus.Metric)
}

func (c collectorFunc) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs {
		ch <- d
	}
}

func (c collectorFunc) Collect(ch chan<- prometheus.Metric) { c.collect(ch) }
