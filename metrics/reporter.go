package metrics

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/broodhq/brood/messenger"
)

// ReportInterval is how often a worker reports its metrics to the agent:
// a worker killed outright loses at most the increments of its last
// interval.
const ReportInterval = time.Second

// Reporter sends one worker's registry to the aggregator in the agent,
// every ReportInterval and whenever a scrape asks.
type Reporter struct {
	msgr *messenger.Messenger
	log  *slog.Logger
	slot string
	g    prometheus.Gatherer

	mu  sync.Mutex // serialises gathers, so that seq orders values
	seq uint64

	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
}

// StartReporter starts reporting prometheus.DefaultGatherer (so promauto
// and custom collectors registered there are included) for the worker in
// slot. framework.Run calls it in every worker; Stop sends a last report.
func StartReporter(ctx context.Context, msgr *messenger.Messenger, slot int, log *slog.Logger) *Reporter {
	return startReporter(ctx, msgr, strconv.Itoa(slot), prometheus.DefaultGatherer, ReportInterval, log)
}

func startReporter(ctx context.Context, msgr *messenger.Messenger, slot string, g prometheus.Gatherer, every time.Duration, log *slog.Logger) *Reporter {
	if log == nil {
		log = slog.Default()
	}
	ctx, cancel := context.WithCancel(ctx)
	r := &Reporter{msgr: msgr, log: log, slot: slot, g: g, cancel: cancel, done: make(chan struct{})}
	msgr.Handle(actionGather, func(context.Context, messenger.Message) (any, error) { return r.snapshot() })
	go r.run(ctx, every)
	return r
}

// snapshot gathers the registry.
func (r *Reporter) snapshot() (report, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	fams, err := r.g.Gather()
	if err != nil && len(fams) == 0 {
		return report{}, fmt.Errorf("gather metrics: %w", err)
	}
	// A collector's error still leaves what the others gathered; Gather
	// returns both, as promhttp with ContinueOnError would serve them.
	b, err := encodeFamilies(fams)
	if err != nil {
		return report{}, err
	}
	r.seq++
	return report{Slot: r.slot, Seq: r.seq, Data: b}, nil
}

func (r *Reporter) run(ctx context.Context, every time.Duration) {
	defer close(r.done)
	t := time.NewTicker(every)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if r.msgr.AgentPID() == 0 {
			// No periodic report while the agent restarts: the master
			// would hold them in the space messages for the agent share,
			// and the next agent asks at its first scrape anyway. (The
			// last report, in Stop, is sent regardless: it is held for the
			// next agent, and it is the only record of what this worker
			// counted since its last report.)
			continue
		}
		err := r.send(ctx, every)
		switch {
		case err != nil && !failing && ctx.Err() == nil:
			r.log.Warn("metrics report to the agent failed; retrying every interval", "err", err)
			failing = true
		case err == nil && failing:
			r.log.Info("metrics reports to the agent work again")
			failing = false
		}
	}
}

// lastReportWait bounds the last report of a stopping worker. A rolling
// reload replaces the agent right after the last worker, so that report is
// often held for the next agent: the old one takes about a second to stop
// (measured: 1.03 s), and a one-second bound lost the drained worker's
// last counts.
const lastReportWait = 5 * time.Second

func (r *Reporter) send(ctx context.Context, timeout time.Duration) error {
	rep, err := r.snapshot()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return r.msgr.CallAgent(ctx, actionReport, rep, nil)
}

// Stop stops the reports after a last one, sent within ctx (lastReportWait
// at most), so that what the worker counted while it drained is kept.
func (r *Reporter) Stop(ctx context.Context) {
	r.once.Do(func() {
		r.cancel()
		<-r.done
		if err := r.send(ctx, lastReportWait); err != nil {
			r.log.Debug("last metrics report failed", "err", err)
		}
	})
}
