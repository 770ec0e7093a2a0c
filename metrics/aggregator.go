package metrics

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/broodhq/brood/messenger"
	"github.com/broodhq/brood/metrics/internal/merge"
)

// DefaultScrapeTimeout bounds how long a scrape waits for the workers: one
// that has not answered by then is shown with its last reported values and
// brood_scrape_slot_up 0.
const DefaultScrapeTimeout = time.Second

// AgentSlot is the value of the slot label for the agent's own metrics.
const AgentSlot = "agent"

// AggregatorConfig describes an Aggregator to StartAggregator.
type AggregatorConfig struct {
	Logger *slog.Logger // nil: slog.Default()
	// Timeout bounds the workers' answers to a scrape; 0 means
	// DefaultScrapeTimeout.
	Timeout time.Duration
	// Addr, if not empty, is where the Aggregator serves /metrics (the
	// cluster view) and /metrics/slots (the per-slot view) over HTTP.
	Addr string
	// Gatherer is the agent's own registry; nil means
	// prometheus.DefaultGatherer.
	Gatherer prometheus.Gatherer
	// StateFile is where the aggregator saves what it carries for
	// replaced workers, for the next agent; "" means a file named after the
	// master's pid in $XDG_RUNTIME_DIR (or the temporary directory), "-"
	// none.
	StateFile string
}

// Aggregator merges the workers' reports into the cluster's view. It runs
// in the agent, the one process per machine that outlives workers; its
// state lives as long as the agent does (see the package documentation).
type Aggregator struct {
	msgr    peers
	log     *slog.Logger
	timeout time.Duration
	self    prometheus.Gatherer
	now     func() time.Time

	mu        sync.Mutex // guards m, selfSeq and dirty
	m         *merge.Merger
	selfRun   uint64 // names this agent's own reports, as a worker's run does
	selfSeq   uint64
	dirty     bool // changed since the last save
	stateFile string
	last      map[int]*lastReport // by pid

	// saveMu orders the state file's writes, which happen outside mu so
	// that a scrape does not wait for the disk: the state is marshalled
	// under mu, then written under saveMu, newest last.
	saveMu sync.Mutex

	rmu   sync.Mutex // guards cur
	cur   *round
	ctx   context.Context // ends at Stop: rounds and the listener stop
	stop  context.CancelFunc
	tasks sync.WaitGroup // rounds and the listener

	srv *server
}

// peers is what the Aggregator needs of the messenger: who the workers
// are, and a way to ask one.
type peers interface {
	AppPIDs() []int
	Call(ctx context.Context, pid int, action string, data, reply any) error
}

// StartAggregator registers the Aggregator's handlers on msgr, and starts
// its listener if c.Addr is set. framework.Run calls it in the agent before
// the agent reports ready, so that the workers' first reports find it.
func StartAggregator(msgr *messenger.Messenger, c AggregatorConfig) *Aggregator {
	a := newAggregator(msgr, c)
	switch c.StateFile {
	case "":
		a.stateFile = defaultStateFile()
	case "-":
	default:
		a.stateFile = c.StateFile
	}
	a.loadState()
	a.tasks.Go(a.saveLoop)
	msgr.Handle(actionReport, func(_ context.Context, msg messenger.Message) (any, error) {
		var rep report
		if err := msg.Decode(&rep); err != nil {
			return nil, err
		}
		return a.report(rep, msg.PID)
	})
	msgr.Handle(actionScrape, func(ctx context.Context, msg messenger.Message) (any, error) {
		var req scrapeRequest
		if err := msg.Decode(&req); err != nil {
			return nil, err
		}
		fams, err := a.Gather(ctx, req.PerSlot)
		if err != nil {
			return nil, err
		}
		b, err := encodeFamilies(fams)
		if err != nil {
			return nil, err
		}
		return report{Slot: AgentSlot, Data: b}, nil
	})
	if c.Addr != "" {
		a.srv = newServer(a, c.Addr)
		a.tasks.Go(func() { a.srv.run(a.ctx, a.log) })
	}
	return a
}

func newAggregator(p peers, c AggregatorConfig) *Aggregator {
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultScrapeTimeout
	}
	if c.Gatherer == nil {
		c.Gatherer = prometheus.DefaultGatherer
	}
	a := &Aggregator{msgr: p, log: c.Logger, timeout: c.Timeout, self: c.Gatherer, now: time.Now, m: merge.New(), selfRun: newRun(), last: map[int]*lastReport{}}
	a.ctx, a.stop = context.WithCancel(context.Background())
	return a
}

// Stop ends the listener and any scrape in progress, and saves the state
// for the next agent.
func (a *Aggregator) Stop() {
	a.stop()
	a.tasks.Wait()
	a.saveState(true)
}

func (a *Aggregator) saveLoop() {
	t := time.NewTicker(saveEvery)
	defer t.Stop()
	for {
		select {
		case <-a.ctx.Done():
			return
		case <-t.C:
		}
		a.saveState(false)
	}
}

// errStaleBase: a delta report's base is not the report the aggregator
// holds for that pid (it restarted, or took another report since).
var errStaleBase = errors.New("metrics report: a delta against a report the agent does not hold")

// holds returns which report of pid the aggregator holds.
func (a *Aggregator) holds(pid int) holding {
	a.mu.Lock()
	defer a.mu.Unlock()
	if l := a.last[pid]; l != nil {
		return holding{Run: l.run, Have: l.seq}
	}
	return holding{}
}

// report takes a worker's periodic report. A delta against what the
// aggregator does not hold is refused by saying what it does hold: the
// worker sends again against that.
func (a *Aggregator) report(rep report, pid int) (holding, error) {
	if err := a.record(rep, pid); err != nil && !errors.Is(err, errStaleBase) {
		return holding{}, err
	}
	return a.holds(pid), nil
}

// record merges one process's report. A family that is the same as in the
// pid's last report (a delta says so; a whole report's encoding is
// compared) is not decoded again: most of a large registry does not change
// from one second to the next.
func (a *Aggregator) record(rep report, pid int) error {
	if rep.Slot == "" || rep.Slot == AgentSlot {
		return fmt.Errorf("metrics report from pid %d: slot %q is not a worker's", pid, rep.Slot)
	}
	a.mu.Lock()
	held := a.last[pid]
	a.mu.Unlock()
	prev := held
	if prev != nil && prev.run != rep.Run {
		// Another process's, under a reused pid: nothing to compare with.
		prev = nil
	}
	var chunks [][]byte
	var fromBase []int // a delta's: which of prev's families each is, or -1
	var err error
	if rep.Base != 0 {
		if prev == nil || prev.seq != rep.Base {
			return errStaleBase
		}
		chunks, fromBase, err = applyDelta(prev.chunks, rep.Data)
	} else {
		chunks, err = splitFamilies(rep.Data)
	}
	if err != nil {
		return fmt.Errorf("metrics report from pid %d: %w", pid, err)
	}
	next := &lastReport{run: rep.Run, seq: rep.Seq, chunks: chunks, names: make([]string, len(chunks))}
	var changed []*dto.MetricFamily
	var same []string
	for i, c := range chunks {
		j := -1
		switch {
		case fromBase != nil:
			j = fromBase[i]
		case prev != nil && i < len(prev.chunks) && bytes.Equal(prev.chunks[i], c):
			j = i
		}
		if j >= 0 {
			next.names[i] = prev.names[j]
			same = append(same, prev.names[j])
			continue
		}
		mf, err := decodeFamily(c)
		if err != nil {
			return fmt.Errorf("metrics report from pid %d: %w", pid, err)
		}
		next.names[i] = mf.GetName()
		changed = append(changed, mf)
	}
	whole := func() error {
		changed, same = nil, nil
		for _, c := range chunks {
			mf, err := decodeFamily(c)
			if err != nil {
				return err
			}
			changed = append(changed, mf)
		}
		return nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.last[pid] != held && len(same) > 0 {
		// Another report of this pid came in meanwhile: what is "same"
		// was same as a report the merger no longer holds.
		if err := whole(); err != nil {
			return fmt.Errorf("metrics report from pid %d: %w", pid, err)
		}
	}
	now := a.now()
	ok := a.m.UpdatePartial(rep.Slot, pid, rep.Run, rep.Seq, now, changed, same)
	if !ok && len(same) > 0 {
		// The merger does not know a family it should have (or the
		// report is stale, which Update refuses again).
		if err := whole(); err != nil {
			return fmt.Errorf("metrics report from pid %d: %w", pid, err)
		}
		ok = a.m.Update(rep.Slot, pid, rep.Run, rep.Seq, now, changed)
	}
	if ok {
		a.last[pid] = next
		a.dirty = true
	}
	return nil
}

// lastReport is a pid's last merged report, family by family.
type lastReport struct {
	run, seq uint64
	chunks   [][]byte // each family's encoding
	names    []string
}

// round is one collection from every worker, shared by the scrapes that
// arrive while it runs.
type round struct {
	done      chan struct{}
	cutoff    time.Time
	collected time.Time

	once    [2]sync.Once
	views   [2][]*dto.MetricFamily
	viewErr [2]error
}

// Gather returns the cluster view (perSlot false) or the per-slot view.
// It asks every worker for a fresh snapshot, in parallel and within the
// Aggregator's timeout; concurrent calls share one collection. It fails
// only when ctx ends first.
func (a *Aggregator) Gather(ctx context.Context, perSlot bool) ([]*dto.MetricFamily, error) {
	r := a.join()
	select {
	case <-r.done:
	case <-ctx.Done():
		return nil, fmt.Errorf("metrics scrape: %w", context.Cause(ctx))
	}
	i := 0
	if perSlot {
		i = 1
	}
	r.once[i].Do(func() {
		start := time.Now()
		a.mu.Lock()
		defer a.mu.Unlock()
		if perSlot {
			r.views[i] = a.m.PerSlot(r.cutoff)
		} else {
			r.views[i] = a.m.Cluster(r.cutoff)
		}
		a.log.Debug("metrics scrape", "per_slot", perSlot, "collect_ms", ms(r.collected.Sub(r.cutoff)), "merge_ms", ms(time.Since(start)), "families", len(r.views[i]))
	})
	return r.views[i], r.viewErr[i]
}

// join returns the round in progress, or starts one.
func (a *Aggregator) join() *round {
	a.rmu.Lock()
	defer a.rmu.Unlock()
	if a.cur != nil {
		select {
		case <-a.cur.done:
		default:
			return a.cur
		}
	}
	r := &round{done: make(chan struct{}), cutoff: a.now()}
	a.cur = r
	if a.ctx.Err() != nil { // stopped: show what is known, ask nobody
		close(r.done)
		return r
	}
	a.tasks.Go(func() {
		defer close(r.done)
		a.collect(r.cutoff)
		r.collected = a.now()
	})
	return r
}

// collect asks every ready worker for a snapshot, gathers the agent's own,
// and retires the pids that have left.
func (a *Aggregator) collect(cutoff time.Time) {
	ctx, cancel := context.WithTimeout(a.ctx, a.timeout)
	defer cancel()
	pids := a.msgr.AppPIDs()
	var wg sync.WaitGroup
	for _, pid := range pids {
		wg.Go(func() {
			var err error
			// A second try if the delta's base is no longer what the
			// aggregator holds (a report came in meanwhile).
			for try := 0; try < 2; try++ {
				var rep report
				err = a.msgr.Call(ctx, pid, actionGather, a.holds(pid), &rep)
				if err == nil {
					err = a.record(rep, pid)
				}
				if !errors.Is(err, errStaleBase) {
					break
				}
			}
			if err != nil && !errors.Is(err, messenger.ErrTargetGone) && !errors.Is(err, context.DeadlineExceeded) {
				a.log.Debug("metrics scrape: worker did not answer", "pid", pid, "err", err)
			}
		})
	}
	a.gatherSelf()
	wg.Wait()
	if a.retire(pids, cutoff) {
		a.saveState(false)
	}
}

func (a *Aggregator) gatherSelf() {
	fams, err := a.self.Gather()
	if err != nil {
		a.log.Debug("gather the agent's metrics", "err", err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.selfSeq++
	a.m.Update(AgentSlot, os.Getpid(), a.selfRun, a.selfSeq, a.now(), fams)
}

// retireGrace is how long a pid that left the membership may still
// report: a draining worker counts its last requests and sends a final
// report after it has left.
const retireGrace = 3 * ReportInterval

// retire moves the pids that left the cluster, and have been silent for
// retireGrace, into their slot's base, and reports whether it moved any.
func (a *Aggregator) retire(members []int, cutoff time.Time) (retired bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(members) == 0 {
		// No membership known (yet): retiring now could retire live
		// workers, whose later reports would then be ignored.
		return false
	}
	for _, p := range a.m.Procs() {
		if p.Slot != AgentSlot && !slices.Contains(members, p.PID) && cutoff.Sub(p.At) > retireGrace {
			a.m.Retire(p.Slot, p.PID)
			delete(a.last, p.PID)
			retired = true
			a.log.Debug("metrics: a pid left its slot; its counts are carried", "slot", p.Slot, "pid", p.PID)
		}
	}
	if retired {
		a.dirty = true // the caller saves, after a.mu is released
	}
	return retired
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
