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

// retiredMemory bounds how many left pids a slot remembers, to ignore
// their late reports.
const retiredMemory = 64

// Merger holds the cluster's snapshots. The zero value is not usable: see
// New.
type Merger struct {
	slots map[string]*slot
}

// New returns an empty Merger.
func New() *Merger { return &Merger{slots: map[string]*slot{}} }

type slot struct {
	name    string
	base    map[string]*family // carried: the cumulative series of left pids
	pids    []*proc            // live pids, oldest first
	retired []int
}

// proc is one pid's last snapshot.
type proc struct {
	pid  int
	seq  uint64
	at   time.Time
	fams map[string]*family
}

type family struct {
	name, help string
	typ        dto.MetricType
	series     map[string]*series
}

type series struct {
	labels []*dto.LabelPair // without the policy label
	policy Policy
	p      point
	base   point // resets of this series under one pid, summed
}

// value is what a series counts: for cumulative types, the resets under
// its pid plus its last value.
func (s *series) value(t dto.MetricType) point {
	if !cumulative(t) {
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
func (m *Merger) Update(slotName string, pid int, seq uint64, at time.Time, fams []*dto.MetricFamily) bool {
	s := m.slots[slotName]
	if s == nil {
		s = &slot{name: slotName, base: map[string]*family{}}
		m.slots[slotName] = s
	}
	if slices.Contains(s.retired, pid) {
		return false
	}
	var pr *proc
	for _, p := range s.pids {
		if p.pid == pid {
			pr = p
		}
	}
	if pr == nil {
		pr = &proc{pid: pid, fams: map[string]*family{}}
		s.pids = append(s.pids, pr)
	} else if seq <= pr.seq {
		return false
	}
	pr.seq, pr.at = seq, at
	next := make(map[string]*family, len(fams))
	for _, mf := range fams {
		name, t := mf.GetName(), mf.GetType()
		f := &family{name: name, help: mf.GetHelp(), typ: t, series: make(map[string]*series, len(mf.Metric))}
		old := pr.fams[name]
		if old != nil && old.typ != t {
			old = nil // a new type: nothing carries over
		}
		for _, dm := range mf.Metric {
			labels, pol := splitPolicy(dm.GetLabel())
			key := labelKey(labels)
			ns := &series{labels: labels, policy: pol, p: pointOf(t, dm)}
			if old != nil {
				if os := old.series[key]; os != nil && cumulative(t) {
					ns.base = os.base
					if ns.p.reset(t, os.p) {
						ns.base = add(os.base, os.p)
					}
				}
			}
			f.series[key] = ns
		}
		if old != nil && cumulative(t) {
			// A cumulative series missing from this snapshot keeps its
			// value: a counter does not go backwards because a collector
			// skipped it once.
			for key, os := range old.series {
				if _, ok := f.series[key]; !ok {
					f.series[key] = os
				}
			}
		}
		next[name] = f
	}
	for name, old := range pr.fams {
		if _, ok := next[name]; !ok && cumulative(old.typ) {
			next[name] = old
		}
	}
	pr.fams = next
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
	pr := s.pids[i]
	s.pids = slices.Delete(s.pids, i, i+1)
	s.retired = append(s.retired, pid)
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

// slotSeries is one slot's value of one series.
type slotSeries struct {
	slot   string
	labels []*dto.LabelPair
	policy Policy
	p      point
}

// collect returns, by family name, the slots' families: cumulative series
// summed over the slot's base and live pids, the others from the newest pid
// if the slot is up.
func (m *Merger) collect(cutoff time.Time) map[string]*famView {
	out := map[string]*famView{}
	for _, s := range m.sortedSlots() {
		up := s.up(cutoff)
		perSlot := map[string]*slotFam{}
		get := func(f *family) *slotFam {
			sf := perSlot[f.name]
			if sf == nil {
				sf = &slotFam{typ: f.typ, help: f.help, series: map[string]*slotSeries{}}
				perSlot[f.name] = sf
			}
			return sf
		}
		addFam := func(f *family, newest bool) {
			sf := get(f)
			if sf.typ != f.typ {
				return // an older pid with another type: the newest wins
			}
			if newest {
				sf.help = f.help
			}
			for key, sr := range f.series {
				v := sr.value(f.typ)
				cur := sf.series[key]
				switch {
				case cur == nil:
					sf.series[key] = &slotSeries{slot: s.name, labels: sr.labels, policy: sr.policy, p: v}
				case cumulative(f.typ):
					q := v.quantiles
					if !newest {
						q = cur.p.quantiles
					}
					cur.p = add(cur.p, v)
					cur.p.quantiles = q
				}
			}
		}
		// The newest pid first: its types win.
		for i := len(s.pids) - 1; i >= 0; i-- {
			newest := i == len(s.pids)-1
			for _, f := range sortedFams(s.pids[i].fams) {
				if cumulative(f.typ) || (newest && up) {
					addFam(f, newest)
				}
			}
		}
		for _, f := range sortedFams(s.base) {
			addFam(f, len(s.pids) == 0)
		}
		for name, sf := range perSlot {
			v := out[name]
			if v == nil {
				v = &famView{name: name}
				out[name] = v
			}
			sf.slot = s.name
			v.slots = append(v.slots, sf)
		}
	}
	return out
}

type famView struct {
	name  string
	slots []*slotFam // by slot order
}

type slotFam struct {
	slot   string
	typ    dto.MetricType
	help   string
	series map[string]*slotSeries
}

// pick chooses the family's type: the one most slots report, ties going to
// the first slot's. It returns the slots whose type differs.
func (v *famView) pick() (dto.MetricType, string, []string) {
	n := map[dto.MetricType]int{}
	for _, sf := range v.slots {
		n[sf.typ]++
	}
	t, help := v.slots[0].typ, v.slots[0].help
	for _, sf := range v.slots {
		if n[sf.typ] > n[t] {
			t, help = sf.typ, sf.help
		}
	}
	var conflicts []string
	for _, sf := range v.slots {
		if sf.typ != t {
			conflicts = append(conflicts, sf.slot)
		}
	}
	return t, help, conflicts
}

// Cluster returns the cluster view: see the package documentation. Slots
// whose newest snapshot is older than cutoff count as down.
func (m *Merger) Cluster(cutoff time.Time) []*dto.MetricFamily {
	var out []*dto.MetricFamily
	var conflicts []*dto.Metric
	for _, v := range m.collect(cutoff) {
		t, help, bad := v.pick()
		for _, sl := range bad {
			conflicts = append(conflicts, gauge(1, lp("family", v.name), lp(SlotLabel, sl)))
		}
		mf := &dto.MetricFamily{Name: ptr(v.name), Help: ptr(help), Type: t.Enum()}
		groups := map[string][]*slotSeries{}
		var keys []string
		for _, sf := range v.slots {
			if sf.typ != t {
				continue
			}
			for key, ss := range sf.series {
				if groups[key] == nil {
					keys = append(keys, key)
				}
				groups[key] = append(groups[key], ss)
			}
		}
		slices.Sort(keys)
		for _, key := range keys {
			mf.Metric = append(mf.Metric, clusterSeries(v.name, t, groups[key])...)
		}
		if len(mf.Metric) > 0 {
			out = append(out, mf)
		}
	}
	out = append(out, m.upFamily(cutoff))
	if len(conflicts) > 0 {
		out = append(out, &dto.MetricFamily{
			Name: ptr(ConflictName), Type: dto.MetricType_GAUGE.Enum(), Metric: conflicts,
			Help: ptr("1 for each slot whose metric family has another type than the cluster view shows; that slot's series of the family are left out."),
		})
	}
	sortFamilies(out)
	return out
}

// clusterSeries merges the slots' values of one series.
func clusterSeries(name string, t dto.MetricType, group []*slotSeries) []*dto.Metric {
	switch t {
	case dto.MetricType_COUNTER, dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
		var p point
		for _, ss := range group {
			p = add(p, ss.p)
		}
		return []*dto.Metric{p.metric(t, group[0].labels)}
	case dto.MetricType_GAUGE:
		pol := resolvePolicy(name, group[0].policy)
		if pol != PerSlot {
			vals := make([]float64, len(group))
			for i, ss := range group {
				vals[i] = ss.p.v
			}
			return []*dto.Metric{point{v: combine(pol, vals)}.metric(t, group[0].labels)}
		}
	}
	out := make([]*dto.Metric, 0, len(group))
	for _, ss := range group {
		out = append(out, ss.p.metric(t, withSlot(ss.labels, ss.slot)))
	}
	return out
}

// PerSlot returns every slot's series with a slot label, nothing merged
// across slots (a slot's pids are, as in Cluster).
func (m *Merger) PerSlot(cutoff time.Time) []*dto.MetricFamily {
	var out []*dto.MetricFamily
	for _, v := range m.collect(cutoff) {
		t, help, _ := v.pick()
		mf := &dto.MetricFamily{Name: ptr(v.name), Help: ptr(help), Type: t.Enum()}
		for _, sf := range v.slots {
			if sf.typ != t {
				continue
			}
			for _, ss := range sf.series {
				mf.Metric = append(mf.Metric, ss.p.metric(t, withSlot(ss.labels, ss.slot)))
			}
		}
		sortMetrics(mf.Metric)
		out = append(out, mf)
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

// labelKey identifies a label set; Gather sorts labels by name, and so
// does splitPolicy's caller, so equal sets give equal keys.
func labelKey(labels []*dto.LabelPair) string {
	var b strings.Builder
	for _, l := range labels {
		b.WriteString(l.GetName())
		b.WriteByte(0xff)
		b.WriteString(l.GetValue())
		b.WriteByte(0xfe)
	}
	return b.String()
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

func lp(name, value string) *dto.LabelPair { return &dto.LabelPair{Name: ptr(name), Value: ptr(value)} }

func gauge(v float64, labels ...*dto.LabelPair) *dto.Metric {
	return &dto.Metric{Label: labels, Gauge: &dto.Gauge{Value: ptr(v)}}
}
