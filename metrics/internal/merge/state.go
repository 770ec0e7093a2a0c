package merge

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
)

// The state a Merger saves so that its successor (a new agent) carries on
// where it stopped: without it, the values carried for replaced pids
// would be lost with the agent.
type state struct {
	Slots []slotState `json:"slots"`
}

type slotState struct {
	Slot    string `json:"slot"`
	Base    []byte `json:"base"` // families, length-delimited protobuf
	Retired []int  `json:"retired,omitempty"`
	// RetiredRuns are the runs of Retired, one for one: a list of their
	// own so that an agent of a version before runs still reads Retired.
	RetiredRuns []uint64    `json:"retired_runs,omitempty"`
	Procs       []procState `json:"procs,omitempty"`
}

type procState struct {
	PID  int    `json:"pid"`
	Run  uint64 `json:"run,omitempty"`
	Seq  uint64 `json:"seq"`
	Fams []byte `json:"fams"` // the pid's last snapshot, as it sent it
}

// MarshalState encodes the Merger's state for UnmarshalState.
func (m *Merger) MarshalState() ([]byte, error) {
	var st state
	for _, s := range m.sortedSlots() {
		ss := slotState{Slot: s.name}
		for _, l := range s.retired {
			ss.Retired, ss.RetiredRuns = append(ss.Retired, l.pid), append(ss.RetiredRuns, l.run)
		}
		// The slot's base, plus the resets seen under each live pid: a
		// restored pid restarts from its last raw snapshot.
		base := map[string]*family{}
		fold := func(name string, t dto.MetricType, help, key string, labels []*dto.LabelPair, p point) {
			f := base[name]
			if f == nil {
				f = &family{name: name, help: help, typ: t, series: map[string]*series{}}
				base[name] = f
			} else if f.typ != t {
				return
			}
			sr := f.series[key]
			if sr == nil {
				sr = &series{labels: labels}
				f.series[key] = sr
			}
			sr.p = add(sr.p, p)
			sr.p.quantiles = nil
		}
		for name, f := range s.base {
			for key, sr := range f.series {
				fold(name, f.typ, f.help, key, sr.labels, sr.p)
			}
		}
		for _, p := range s.pids {
			for name, f := range p.fams {
				if !cumulative(f.typ) {
					continue
				}
				for key, sr := range f.series {
					if sr.hasBase {
						fold(name, f.typ, f.help, key, sr.labels, sr.base)
					}
				}
			}
		}
		var err error
		if ss.Base, err = encode(base, false); err != nil {
			return nil, err
		}
		for _, p := range s.pids {
			b, err := encode(p.fams, true)
			if err != nil {
				return nil, err
			}
			ss.Procs = append(ss.Procs, procState{PID: p.pid, Run: p.run, Seq: p.seq, Fams: b})
		}
		st.Slots = append(st.Slots, ss)
	}
	return json.Marshal(st)
}

// UnmarshalState restores what MarshalState saved into an empty Merger,
// as of now: the restored pids' snapshots count as taken then.
func (m *Merger) UnmarshalState(b []byte, now time.Time) error {
	var st state
	if err := json.Unmarshal(b, &st); err != nil {
		return fmt.Errorf("decode metrics state: %w", err)
	}
	for _, ss := range st.Slots {
		base, err := decode(ss.Base)
		if err != nil {
			return err
		}
		s := &slot{name: ss.Slot, base: map[string]*family{}}
		for i, pid := range ss.Retired {
			l := left{pid: pid}
			if i < len(ss.RetiredRuns) {
				l.run = ss.RetiredRuns[i]
			}
			s.retired = append(s.retired, l)
		}
		for _, mf := range base {
			t := mf.GetType()
			f := &family{name: mf.GetName(), help: mf.GetHelp(), typ: t, series: map[string]*series{}}
			for _, dm := range mf.Metric {
				f.series[labelKey(dm.Label)] = &series{labels: dm.Label, p: pointOf(t, dm)}
			}
			s.base[f.name] = f
		}
		m.slots[ss.Slot] = s
		for _, p := range ss.Procs {
			fams, err := decode(p.Fams)
			if err != nil {
				return err
			}
			m.Update(ss.Slot, p.PID, p.Run, p.Seq, now, fams)
		}
	}
	return nil
}

// encode writes families; raw keeps each series' last value as its pid
// reported it (with its policy label), not counting resets.
func encode(fams map[string]*family, raw bool) ([]byte, error) {
	var buf bytes.Buffer
	enc := expfmt.NewEncoder(&buf, expfmt.NewFormat(expfmt.TypeProtoDelim))
	for _, f := range sortedFams(fams) {
		mf := &dto.MetricFamily{Name: ptr(f.name), Help: ptr(f.help), Type: f.typ.Enum()}
		for _, sr := range f.series {
			labels := sr.labels
			if raw && sr.policy != Default {
				labels = append(slices.Clone(labels), lp(PolicyLabel, sr.policy.String()))
				slices.SortFunc(labels, func(a, b *dto.LabelPair) int { return strings.Compare(a.GetName(), b.GetName()) })
			}
			mf.Metric = append(mf.Metric, sr.p.metric(f.typ, labels))
		}
		if err := enc.Encode(mf); err != nil {
			return nil, fmt.Errorf("encode metrics state %s: %w", f.name, err)
		}
	}
	return buf.Bytes(), nil
}

func decode(b []byte) ([]*dto.MetricFamily, error) {
	dec := expfmt.NewDecoder(bytes.NewReader(b), expfmt.NewFormat(expfmt.TypeProtoDelim))
	var out []*dto.MetricFamily
	for {
		mf := &dto.MetricFamily{}
		if err := dec.Decode(mf); err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return nil, fmt.Errorf("decode metrics state: %w", err)
		}
		out = append(out, mf)
	}
}
