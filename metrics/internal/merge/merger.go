package merge

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
)

// Names of what the Merger adds.
const (
	// SlotLabel names the slot of a per-slot series. A series that already
	// has a label "slot" gets AltSlotLabel instead.
	SlotLabel    = "slot"
	AltSlotLabel = "brood_slot"
	// UpName is the gauge saying whether a slot answered: 1 or 0.
	UpName = "brood_scrape_slot_up"
	// ConflictName is the gauge naming a slot whose family has another type
	// than the one the cluster view shows; its series are left out.
	ConflictName = "brood_scrape_type_conflict"
)

// retiredMemory bounds how many left processes a slot remembers, to ignore
// their late reports.
const retiredMemory = 64

// Merger holds the cluster's snapshots. The zero value is not usable: see
// New.
type Merger struct {
	slots map[string]*slot
	key   []byte // scratch for label keys
	ver   uint64 // the last version given to a family that changed

	// The views' families as last written, reused while their sources
	// are the same families at the same versions: a family no process
	// changed costs a scrape nothing.
	views [2]map[string]*cached
}

// New returns an empty Merger.
func New() *Merger {
	return &Merger{slots: map[string]*slot{}, views: [2]map[string]*cached{{}, {}}}
}

type cached struct {
	sig       []famRef
	mf        *dto.MetricFamily // nil: no series
	conflicts []*dto.Metric
}

type famRef struct {
	slot string
	f    *family
	ver  uint64
}

// signature lists what a view's family is made of.
func signature(srcs []source) []famRef {
	var sig []famRef
	for _, src := range srcs {
		for _, f := range src.fams {
			sig = append(sig, famRef{src.slot, f, f.ver})
		}
	}
	return sig
}

// view returns the cached family of view i for name if srcs are what it
// was made of, or makes it with build and caches it.
func (m *Merger) view(i int, name string, srcs []source, build func() (*dto.MetricFamily, []*dto.Metric)) (*dto.MetricFamily, []*dto.Metric) {
	sig := signature(srcs)
	if c := m.views[i][name]; c != nil && slices.Equal(c.sig, sig) {
		return c.mf, c.conflicts
	}
	mf, conflicts := build()
	m.views[i][name] = &cached{sig: sig, mf: mf, conflicts: conflicts}
	return mf, conflicts
}

// forget drops the cached families that no longer have sources.
func (m *Merger) forget(i int, srcs map[string][]source) {
	for name := range m.views[i] {
		if _, ok := srcs[name]; !ok {
			delete(m.views[i], name)
		}
	}
}

type slot struct {
	name     string
	base     map[string]*family // carried: the cumulative series of left pids
	pids     []*proc            // live pids, oldest first
	retired  []left
	lastSeen time.Time // the last snapshot of a retired pid
}

// left is a process that left a slot, named as its snapshots were.
type left struct {
	pid int
	run uint64
}

// sameRun reports whether two snapshots' runs can be one process's: run 0
// names no run (a process that does not say, or one restored from a state
// that did not say).
func sameRun(a, b uint64) bool { return a == b || a == 0 || b == 0 }

func (s *slot) isRetired(pid int, run uint64) bool {
	return slices.ContainsFunc(s.retired, func(l left) bool { return l.pid == pid && sameRun(l.run, run) })
}

// UpMemory is how long a slot whose pids all left (scaled away, or not
// replaced) still shows brood_scrape_slot_up 0; then only its carried
// counts remain.
const UpMemory = 10 * time.Minute

// proc is one pid's last snapshot.
type proc struct {
	pid  int
	run  uint64 // the process's, as its snapshots say; 0: not said
	seq  uint64
	at   time.Time
	fams map[string]*family
}

type family struct {
	name, help string
	typ        dto.MetricType
	series     map[string]*series
	seen       uint64 // the snapshot that last had it
	ver        uint64 // changes whenever its series do
}

type series struct {
	labels  []*dto.LabelPair // without the policy label
	policy  Policy
	p       point
	base    point // resets of this series under one pid, summed
	hasBase bool
	seen    uint64
}

// value is what a series counts: for cumulative types, the resets under
// its pid plus its last value.
func (s *series) value(t dto.MetricType) point {
	if !s.hasBase || !cumulative(t) {
		return s.p
	}
	v := add(s.base, s.p)
	v.quantiles = s.p.quantiles
	return v
}

func cumulative(t dto.MetricType) bool {
	return t == dto.MetricType_COUNTER || t == dto.MetricType_HISTOGRAM || t == dto.MetricType_SUMMARY
}

// Update records the snapshot number seq of pid in the slot, taken at.
// A snapshot not newer than the last one of that pid, or one from a pid
// that left the slot, is ignored; Update reports whether it was taken.
//
// run names the process (0: not known) so that a pid the system gave to a
// new process is not taken for the old one, whose seqs the new one's are
// not comparable to: a snapshot of another run than the pid's live one
// retires that one first (its counts are carried), and a retired pid's
// new run is a new process, not a late report.
//
// A pid's series are updated in place: snapshots of one process mostly
// hold the same series, and a scrape of thousands of them should not
// allocate them anew every time.
func (m *Merger) Update(slotName string, pid int, run, seq uint64, at time.Time, fams []*dto.MetricFamily) bool {
	return m.UpdatePartial(slotName, pid, run, seq, at, fams, nil)
}

// UpdatePartial is Update for a snapshot of which the caller decoded only
// the families that changed since the pid's last snapshot (the one Update
// last took); same names the others, which keep their series as they are.
// If one of them is unknown (or the pid's snapshot is another run's),
// UpdatePartial takes nothing and returns false, and the caller should
// decode everything and call Update.
func (m *Merger) UpdatePartial(slotName string, pid int, run, seq uint64, at time.Time, fams []*dto.MetricFamily, same []string) bool {
	s := m.slots[slotName]
	if s == nil {
		s = &slot{name: slotName, base: map[string]*family{}}
		m.slots[slotName] = s
	}
	if s.isRetired(pid, run) {
		return false
	}
	var pr *proc
	for _, p := range s.pids {
		if p.pid == pid {
			pr = p
		}
	}
	if pr != nil && !sameRun(pr.run, run) {
		if len(same) > 0 {
			return false
		}
		// The pid is a new process's: the old one has left.
		m.retire(s, pr)
		pr = nil
	}
	if pr != nil && seq <= pr.seq {
		return false
	}
	for _, name := range same {
		if pr == nil || pr.fams[name] == nil {
			return false
		}
	}
	if pr == nil {
		pr = &proc{pid: pid, fams: map[string]*family{}}
		s.pids = append(s.pids, pr)
	}
	if pr.run == 0 {
		pr.run = run
	}
	pr.seq, pr.at = seq, at
	for _, name := range same {
		pr.fams[name].seen = seq
	}
	for _, mf := range fams {
		name, t := mf.GetName(), mf.GetType()
		f := pr.fams[name]
		if f == nil || f.typ != t {
			// New, or a new type: nothing carries over.
			f = &family{name: name, typ: t, series: make(map[string]*series, len(mf.Metric))}
			pr.fams[name] = f
		}
		m.ver++
		f.help, f.seen, f.ver = mf.GetHelp(), seq, m.ver
		cum := cumulative(t)
		for _, dm := range mf.Metric {
			m.key = appendKey(m.key[:0], dm.GetLabel())
			np := pointOf(t, dm)
			sr := f.series[string(m.key)]
			if sr == nil {
				labels, pol := splitPolicy(dm.GetLabel())
				// A copy: the snapshot's families may share their strings
				// and messages with one another (the aggregator decodes
				// them into slabs), which a series kept for good must not
				// keep alive.
				f.series[string(m.key)] = &series{labels: cloneLabels(labels), policy: pol, p: np, seen: seq}
				continue
			}
			if cum && np.reset(t, sr.p) {
				sr.base, sr.hasBase = add(sr.base, sr.p), true
			}
			sr.p, sr.seen = np, seq
		}
		if !cum {
			// A cumulative series missing from a snapshot keeps its value
			// (a counter does not go backwards because a collector skipped
			// it once); a gauge that is gone is gone.
			for key, sr := range f.series {
				if sr.seen != seq {
					delete(f.series, key)
				}
			}
		}
	}
	for name, f := range pr.fams {
		if f.seen != seq && !cumulative(f.typ) {
			delete(pr.fams, name)
		}
	}
	return true
}

// Retire records that pid has left the slot: its last cumulative values
// move to the slot's base, and its later reports are ignored.
func (m *Merger) Retire(slotName string, pid int) {
	s := m.slots[slotName]
	if s == nil {
		return
	}
	i := slices.IndexFunc(s.pids, func(p *proc) bool { return p.pid == pid })
	if i < 0 {
		return
	}
	m.retire(s, s.pids[i])
}

func (m *Merger) retire(s *slot, pr *proc) {
	s.pids = slices.DeleteFunc(s.pids, func(p *proc) bool { return p == pr })
	if pr.at.After(s.lastSeen) {
		s.lastSeen = pr.at
	}
	s.retired = append(s.retired, left{pr.pid, pr.run})
	if len(s.retired) > retiredMemory {
		s.retired = s.retired[1:]
	}
	for name, f := range pr.fams {
		if !cumulative(f.typ) {
			continue
		}
		b := s.base[name]
		if b == nil || b.typ != f.typ {
			b = &family{name: name, help: f.help, typ: f.typ, series: map[string]*series{}}
			s.base[name] = b
		}
		m.ver++
		b.ver = m.ver
		for key, sr := range f.series {
			bs := b.series[key]
			if bs == nil {
				bs = &series{labels: sr.labels}
				b.series[key] = bs
			}
			bs.p = add(bs.p, sr.value(f.typ))
			bs.p.quantiles = nil
		}
	}
}

// Proc is a live pid of a slot, and when its last snapshot was taken.
type Proc struct {
	Slot string
	PID  int
	At   time.Time
}

// Procs returns the live pids, as Update saw them and Retire left them.
func (m *Merger) Procs() []Proc {
	var out []Proc
	for _, s := range m.sortedSlots() {
		for _, p := range s.pids {
			out = append(out, Proc{Slot: s.name, PID: p.pid, At: p.at})
		}
	}
	return out
}

// Up reports whether the slot's newest pid has a snapshot taken at or after
// cutoff.
func (s *slot) up(cutoff time.Time) bool {
	return len(s.pids) > 0 && !s.pids[len(s.pids)-1].at.Before(cutoff)
}

// source is what one slot shows of one family: the families of its live
// pids, newest first, then its base; only those of the slot's type.
type source struct {
	slot string
	typ  dto.MetricType
	help string
	fams []*family
}

// sources returns, by family name, each slot's source (in slot order).
// Cumulative families come from every live pid and the base; the others
// from the newest pid only, and only if the slot is up.
func (m *Merger) sources(cutoff time.Time) map[string][]source {
	out := map[string][]source{}
	for _, s := range m.sortedSlots() {
		up := s.up(cutoff)
		mine := map[string]*source{}
		var order []string
		take := func(f *family) {
			src := mine[f.name]
			if src == nil {
				src = &source{slot: s.name, typ: f.typ, help: f.help}
				mine[f.name] = src
				order = append(order, f.name)
			}
			if src.typ == f.typ { // the newest pid's type wins
				src.fams = append(src.fams, f)
			}
		}
		for i := len(s.pids) - 1; i >= 0; i-- {
			newest := i == len(s.pids)-1
			for _, f := range s.pids[i].fams {
				if cumulative(f.typ) || (newest && up) {
					take(f)
				}
			}
		}
		for _, f := range s.base {
			take(f)
		}
		for _, name := range order {
			out[name] = append(out[name], *mine[name])
		}
	}
	return out
}

// pick chooses a family's type: the one most slots report, ties going to
// the first slot's. It returns the slots whose type differs.
func pick(srcs []source) (dto.MetricType, string, []string) {
	n := map[dto.MetricType]int{}
	for _, src := range srcs {
		n[src.typ]++
	}
	t, help := srcs[0].typ, srcs[0].help
	for _, src := range srcs {
		if n[src.typ] > n[t] {
			t, help = src.typ, src.help
		}
	}
	var conflicts []string
	for _, src := range srcs {
		if src.typ != t {
			conflicts = append(conflicts, src.slot)
		}
	}
	return t, help, conflicts
}

// acc accumulates one output series.
type acc struct {
	key    string // the labels', for sorting
	slot   string // "" when merged across slots
	labels []*dto.LabelPair
	policy Policy
	p      point
	vals   []float64 // a gauge's slots, for min and max
}

// accumulate merges the series of srcs of type t: across slots unless
// bySlot (one series per slot and labels), within a slot always.
func accumulate(t dto.MetricType, srcs []source, bySlot func(key string, sr *series) bool) []*acc {
	var keyed map[string]*acc
	var out []*acc
	for _, src := range srcs {
		if src.typ != t {
			continue
		}
		var local map[string]*acc
		for _, f := range src.fams {
			for key, sr := range f.series {
				m := &keyed
				if bySlot(key, sr) {
					m = &local
				}
				if *m == nil {
					*m = map[string]*acc{}
				}
				v := sr.value(t)
				a := (*m)[key]
				switch {
				case a == nil:
					a = &acc{key: key, labels: sr.labels, policy: sr.policy, p: v}
					if m == &local {
						a.slot = src.slot
					}
					if t == dto.MetricType_GAUGE {
						a.vals = []float64{v.v}
					}
					(*m)[key] = a
					out = append(out, a)
				case t == dto.MetricType_GAUGE:
					a.vals = append(a.vals, v.v)
				default:
					q := a.p.quantiles // the newest pid's, which came first
					a.p = add(a.p, v)
					a.p.quantiles = q
				}
			}
		}
	}
	return out
}

// metric writes an accumulated series.
func (f acc) metric(name string, t dto.MetricType) *dto.Metric {
	labels := f.labels
	if f.slot != "" {
		labels = withSlot(labels, f.slot)
	}
	if t == dto.MetricType_GAUGE {
		f.p.v = combine(resolvePolicy(name, f.policy), f.vals)
	}
	return f.p.metric(t, labels)
}

// writeFamily writes accumulated series as one family, sorted by labels
// (then slot).
func writeFamily(name, help string, t dto.MetricType, accs []*acc) *dto.MetricFamily {
	slices.SortFunc(accs, func(a, b *acc) int {
		if c := strings.Compare(a.key, b.key); c != 0 {
			return c
		}
		return compareSlots(a.slot, b.slot)
	})
	mf := &dto.MetricFamily{Name: ptr(name), Help: ptr(help), Type: t.Enum(), Metric: make([]*dto.Metric, 0, len(accs))}
	for _, a := range accs {
		mf.Metric = append(mf.Metric, a.metric(name, t))
	}
	return mf
}

// Cluster returns the cluster view: see the package documentation. Slots
// whose newest snapshot is older than cutoff count as down. The families
// returned may be shared with later calls: read them, do not change them.
func (m *Merger) Cluster(cutoff time.Time) []*dto.MetricFamily {
	var out []*dto.MetricFamily
	var conflicts []*dto.Metric
	all := m.sources(cutoff)
	m.forget(0, all)
	for name, srcs := range all {
		mf, bad := m.view(0, name, srcs, func() (*dto.MetricFamily, []*dto.Metric) {
			t, help, slotsBad := pick(srcs)
			var bad []*dto.Metric
			for _, sl := range slotsBad {
				bad = append(bad, gauge(1, lp("family", name), lp(SlotLabel, sl)))
			}
			var bySlot func(string, *series) bool
			switch t {
			case dto.MetricType_COUNTER, dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
				bySlot = func(string, *series) bool { return false }
			case dto.MetricType_GAUGE:
				bySlot = func(_ string, sr *series) bool { return resolvePolicy(name, sr.policy) == PerSlot }
			default: // summaries and untyped
				bySlot = func(string, *series) bool { return true }
			}
			if accs := accumulate(t, srcs, bySlot); len(accs) > 0 {
				return writeFamily(name, help, t, accs), bad
			}
			return nil, bad
		})
		if mf != nil {
			out = append(out, mf)
		}
		conflicts = append(conflicts, bad...)
	}
	out = append(out, m.upFamily(cutoff))
	if len(conflicts) > 0 {
		sortMetrics(conflicts)
		out = append(out, &dto.MetricFamily{
			Name: ptr(ConflictName), Type: dto.MetricType_GAUGE.Enum(), Metric: conflicts,
			Help: ptr("1 for each slot whose metric family has another type than the cluster view shows; that slot's series of the family are left out."),
		})
	}
	sortFamilies(out)
	return out
}

// PerSlot returns every slot's series with a slot label, nothing merged
// across slots (a slot's pids are, as in Cluster). The families returned
// may be shared with later calls, as Cluster's.
func (m *Merger) PerSlot(cutoff time.Time) []*dto.MetricFamily {
	var out []*dto.MetricFamily
	all := m.sources(cutoff)
	m.forget(1, all)
	for name, srcs := range all {
		mf, _ := m.view(1, name, srcs, func() (*dto.MetricFamily, []*dto.Metric) {
			t, help, _ := pick(srcs)
			if accs := accumulate(t, srcs, func(string, *series) bool { return true }); len(accs) > 0 {
				return writeFamily(name, help, t, accs), nil
			}
			return nil, nil
		})
		if mf != nil {
			out = append(out, mf)
		}
	}
	out = append(out, m.upFamily(cutoff))
	sortFamilies(out)
	return out
}

func (m *Merger) upFamily(cutoff time.Time) *dto.MetricFamily {
	mf := &dto.MetricFamily{
		Name: ptr(UpName), Type: dto.MetricType_GAUGE.Enum(),
		Help: ptr("1 if the slot's process answered the last scrape in time, 0 if the scrape shows its last known values."),
	}
	for _, s := range m.sortedSlots() {
		if len(s.pids) == 0 && cutoff.Sub(s.lastSeen) > UpMemory {
			continue
		}
		v := 0.0
		if s.up(cutoff) {
			v = 1
		}
		mf.Metric = append(mf.Metric, gauge(v, lp(SlotLabel, s.name)))
	}
	return mf
}

func (m *Merger) sortedSlots() []*slot {
	out := make([]*slot, 0, len(m.slots))
	for _, s := range m.slots {
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b *slot) int { return compareSlots(a.name, b.name) })
	return out
}

// compareSlots orders slots numerically, then the others ("agent") by name.
func compareSlots(a, b string) int {
	ia, ea := strconv.Atoi(a)
	ib, eb := strconv.Atoi(b)
	switch {
	case ea == nil && eb == nil:
		return cmp.Compare(ia, ib)
	case ea == nil:
		return -1
	case eb == nil:
		return 1
	}
	return strings.Compare(a, b)
}

func sortedFams(fams map[string]*family) []*family {
	out := make([]*family, 0, len(fams))
	for _, f := range fams {
		out = append(out, f)
	}
	slices.SortFunc(out, func(a, b *family) int { return strings.Compare(a.name, b.name) })
	return out
}

func sortFamilies(fams []*dto.MetricFamily) {
	slices.SortFunc(fams, func(a, b *dto.MetricFamily) int { return strings.Compare(a.GetName(), b.GetName()) })
}

func sortMetrics(ms []*dto.Metric) {
	slices.SortFunc(ms, func(a, b *dto.Metric) int { return strings.Compare(labelKey(a.Label), labelKey(b.Label)) })
}

// labelKey identifies a label set, the policy label aside; Gather sorts
// labels by name, so equal sets give equal keys.
func labelKey(labels []*dto.LabelPair) string { return string(appendKey(nil, labels)) }

func appendKey(b []byte, labels []*dto.LabelPair) []byte {
	for _, l := range labels {
		if l.GetName() == PolicyLabel {
			continue
		}
		b = append(b, l.GetName()...)
		b = append(b, 0xff)
		b = append(b, l.GetValue()...)
		b = append(b, 0xfe)
	}
	return b
}

// withSlot returns labels plus the slot label, kept sorted by name.
func withSlot(labels []*dto.LabelPair, slotName string) []*dto.LabelPair {
	name := SlotLabel
	if slices.ContainsFunc(labels, func(l *dto.LabelPair) bool { return l.GetName() == SlotLabel }) {
		name = AltSlotLabel
	}
	out := make([]*dto.LabelPair, 0, len(labels)+1)
	out = append(out, labels...)
	out = append(out, lp(name, slotName))
	slices.SortFunc(out, func(a, b *dto.LabelPair) int { return strings.Compare(a.GetName(), b.GetName()) })
	return out
}

func cloneLabels(labels []*dto.LabelPair) []*dto.LabelPair {
	out := make([]*dto.LabelPair, len(labels))
	for i, l := range labels {
		out[i] = lp(strings.Clone(l.GetName()), strings.Clone(l.GetValue()))
	}
	return out
}

func lp(name, value string) *dto.LabelPair { return &dto.LabelPair{Name: ptr(name), Value: ptr(value)} }

func gauge(v float64, labels ...*dto.LabelPair) *dto.Metric {
	return &dto.Metric{Label: labels, Gauge: &dto.Gauge{Value: ptr(v)}}
}
