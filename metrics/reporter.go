package metrics

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/broodhq/brood/messenger"
)

// ReportInterval bounds how old a worker's newest report to the agent is
// (a scrape's gather counts as one): a worker killed outright loses at
// most the increments of its last interval.
const ReportInterval = time.Second

// Reporter sends one worker's registry to the aggregator in the agent,
// whenever a scrape asks and ReportInterval after the newest report.
type Reporter struct {
	msgr agentLink
	log  *slog.Logger
	slot string
	g    prometheus.Gatherer

	runID uint64 // this Reporter's report.Run

	mu   sync.Mutex // serialises gathers, so that seq orders values; guards what follows
	seq  uint64
	kept []*encoded // the last reports made, newest first: the bases of deltas
	free []byte     // the buffer of a report no longer kept, for the next one
	last time.Time  // when the newest report was gathered
	// deltas: the agent takes deltas (it said what it holds, for this
	// run); periodic reports are then deltas against the newest report,
	// which the agent holds unless a reply was lost or it restarted.
	deltas bool

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
	r := newReporter(msgr, slot, g, log)
	msgr.Handle(actionGather, func(_ context.Context, msg messenger.Message) (any, error) {
		var h holding
		if msg.Decode(&h) != nil { // not from this version: answer whole
			h = holding{}
		}
		return r.gather(h)
	})
	r.start(ctx, every)
	return r
}

// agentLink is what a Reporter needs of the messenger: whether there is an
// agent, and a way to call it. Tests stand in for the agent with it.
type agentLink interface {
	AgentPID() int
	CallAgent(ctx context.Context, action string, data, reply any) error
}

func newReporter(msgr agentLink, slot string, g prometheus.Gatherer, log *slog.Logger) *Reporter {
	if log == nil {
		log = slog.Default()
	}
	return &Reporter{msgr: msgr, log: log, slot: slot, g: g, runID: newRun(), done: make(chan struct{})}
}

// start starts the periodic reports; Stop ends them.
func (r *Reporter) start(ctx context.Context, every time.Duration) {
	ctx, r.cancel = context.WithCancel(ctx)
	go r.run(ctx, every)
}

// gather answers a scrape's gather: an agent that holds one of this run's
// reports takes deltas from now on, periodic reports included.
func (r *Reporter) gather(agent holding) (report, error) {
	if agent.Run == r.runID {
		r.mu.Lock()
		r.deltas = true
		r.mu.Unlock()
	}
	return r.snapshot(agent)
}

// newRun returns a report.Run: not 0, and unlikely to be another
// process's.
func newRun() uint64 { return rand.Uint64() | 1 }

// keepReports is how many of its last reports a worker keeps as bases for
// deltas: the agent may hold the one before the last (a periodic report
// and a scrape's gather crossed).
const keepReports = 2

// snapshot gathers the registry, as a delta against the report the agent
// holds if it is one of those kept, else whole.
func (r *Reporter) snapshot(agent holding) (report, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	fams, err := r.g.Gather()
	if err != nil && len(fams) == 0 {
		return report{}, fmt.Errorf("gather metrics: %w", err)
	}
	// A collector's error still leaves what the others gathered; Gather
	// returns both, as promhttp with ContinueOnError would serve them.
	e, err := encodeEach(r.free, fams)
	if err != nil {
		return report{}, err
	}
	r.free = nil
	r.seq++
	e.seq = r.seq
	rep := report{Slot: r.slot, Seq: r.seq, Run: r.runID}
	var base *encoded
	if agent.Run == r.runID && agent.Have != 0 {
		for _, k := range r.kept {
			if k.seq == agent.Have {
				base = k
			}
		}
	}
	if base != nil {
		rep.Base, rep.Data = base.seq, appendDelta(nil, base, e)
	} else {
		rep.Data, e.exposed = e.buf, true
	}
	r.last = time.Now()
	r.kept = append([]*encoded{e}, r.kept...)
	if len(r.kept) > keepReports {
		if old := r.kept[keepReports]; !old.exposed {
			r.free = old.buf[:0]
		}
		r.kept = r.kept[:keepReports]
	}
	return rep, nil
}

// due returns how long until the next periodic report is due: every after
// the newest report, a scrape's gather included (it is as recent a record
// for the agent), so that a scraped worker is not gathered twice as often
// as it needs to be. 0: now.
func (r *Reporter) due(every time.Duration) time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	return max(every-time.Since(r.last), 0)
}

func (r *Reporter) run(ctx context.Context, every time.Duration) {
	defer close(r.done)
	t := time.NewTimer(every)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if wait := r.due(every); wait > 0 {
			t.Reset(wait)
			continue
		}
		t.Reset(every)
		if r.msgr.AgentPID() == 0 {
			// No periodic report while the agent restarts: the master
			// would hold them in the space messages for the agent share,
			// and the next agent asks at its first scrape anyway. (The
			// last report, in Stop, is sent regardless: it is held for the
			// next agent, and it is the only record of what this worker
			// counted since its last report.)
			continue
		}
		err := r.send(ctx, every, false)
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

// send reports to the agent: unless whole, a delta against the newest
// report if the agent takes deltas. If the agent does not hold the delta's
// base (it restarted, or a reply was lost), it says what it holds, and
// send tries once more against that.
func (r *Reporter) send(ctx context.Context, timeout time.Duration, whole bool) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var agent holding
	r.mu.Lock()
	if !whole && r.deltas && len(r.kept) > 0 {
		agent = holding{Run: r.runID, Have: r.kept[0].seq}
	}
	r.mu.Unlock()
	for try := 0; ; try++ {
		rep, err := r.snapshot(agent)
		if err != nil {
			return err
		}
		var ack holding
		err = r.msgr.CallAgent(ctx, actionReport, rep, &ack)
		r.mu.Lock()
		// An agent that fails a report, or answers without saying what it
		// holds (an older one), is sent whole reports until it says.
		r.deltas = err == nil && ack.Run == r.runID
		r.mu.Unlock()
		if err != nil {
			return err
		}
		if rep.Base == 0 || try > 0 || ack.Run == r.runID && ack.Have >= rep.Seq {
			return nil
		}
		agent = ack
	}
}

// Stop stops the reports after a last one, sent within ctx (lastReportWait
// at most), so that what the worker counted while it drained is kept.
func (r *Reporter) Stop(ctx context.Context) {
	r.once.Do(func() {
		r.cancel()
		<-r.done
		// Whole: it may be held for the next agent, which holds nothing.
		if err := r.send(ctx, lastReportWait, true); err != nil {
			r.log.Debug("last metrics report failed", "err", err)
		}
	})
}
