package metrics

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"google.golang.org/protobuf/proto"
)

// The messenger actions of the metrics protocol; "brood." actions are the
// framework's.
const (
	actionReport = "brood.metrics.report" // worker → agent, every ReportInterval
	actionGather = "brood.metrics.gather" // agent → worker, at each scrape
	actionScrape = "brood.metrics.scrape" // worker's Handler → agent
)

// report is one process's snapshot. Seq orders a pid's snapshots: a
// higher one was gathered later.
type report struct {
	Slot string `json:"slot"`
	Seq  uint64 `json:"seq"`
	// Run names the Reporter (one per process start), so that a delta is
	// never applied to another process's report under a reused pid.
	Run uint64 `json:"run,omitempty"`
	// Base, if not 0, is the Seq of the earlier report of this Run that
	// Data is a delta against (see delta.go); 0: Data is whole.
	Base uint64 `json:"base,omitempty"`
	Data []byte `json:"data"` // metric families, length-delimited protobuf, or a delta
}

// holding says which report of a worker the aggregator holds: it asks a
// gather with it (the worker may then answer with a delta against that
// report) and answers a report with it. The zero value, what an older
// agent sends, holds nothing: the answer is whole.
type holding struct {
	Run  uint64 `json:"run,omitempty"`
	Have uint64 `json:"have,omitempty"` // a report's Seq
}

// scrapeRequest asks the aggregator for a view.
type scrapeRequest struct {
	PerSlot bool `json:"per_slot,omitempty"`
}

var protoDelim = expfmt.NewFormat(expfmt.TypeProtoDelim)

func encodeFamilies(fams []*dto.MetricFamily) ([]byte, error) {
	var buf bytes.Buffer
	enc := expfmt.NewEncoder(&buf, protoDelim)
	for _, mf := range fams {
		if err := enc.Encode(mf); err != nil {
			return nil, fmt.Errorf("encode metric family %s: %w", mf.GetName(), err)
		}
	}
	return buf.Bytes(), nil
}

func decodeFamilies(b []byte) ([]*dto.MetricFamily, error) {
	dec := expfmt.NewDecoder(bytes.NewReader(b), protoDelim)
	var out []*dto.MetricFamily
	for {
		mf := &dto.MetricFamily{}
		if err := dec.Decode(mf); err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return nil, fmt.Errorf("decode metric families: %w", err)
		}
		out = append(out, mf)
	}
}

// splitFamilies cuts length-delimited families apart without decoding
// them.
func splitFamilies(b []byte) ([][]byte, error) {
	var out [][]byte
	for len(b) > 0 {
		n, k := binary.Uvarint(b)
		if k <= 0 || uint64(len(b)-k) < n {
			return nil, errors.New("decode metric families: truncated length-delimited message")
		}
		out = append(out, b[k:k+int(n)])
		b = b[k+int(n):]
	}
	return out, nil
}

func decodeFamily(b []byte) (*dto.MetricFamily, error) {
	if mf, ok := decodeSimpleFamily(b); ok {
		return mf, nil
	}
	mf := &dto.MetricFamily{}
	if err := proto.Unmarshal(b, mf); err != nil {
		return nil, fmt.Errorf("decode metric family: %w", err)
	}
	return mf, nil
}
