package master

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/broodhq/brood/internal/protocol"
	"github.com/broodhq/brood/internal/wire"
	"github.com/broodhq/brood/schedule"
)

// TestAgentJobsQuery checks the master's side of asking the agent for its
// jobs, with a socketpair standing in for the agent.
func TestAgentJobsQuery(t *testing.T) {
	a, b := net.Pipe()
	masterEnd, agentEnd := wire.NewConn(a, 0), wire.NewConn(b, 0)
	defer masterEnd.Close(0)
	defer agentEnd.Close(0)
	m := &master{}
	m.router.table.Store(&routeTable{agent: masterEnd})
	want := []schedule.JobStatus{{Name: "flush", Schedule: "every 1m0s", Runs: 3}}
	go func() {
		raw, err := agentEnd.Read()
		if err != nil {
			return
		}
		f, _ := wire.Parse(raw)
		var q protocol.JobsMsg
		_ = json.Unmarshal(f.Data, &q)
		reply := protocol.Control(protocol.Jobs, protocol.JobsMsg{ID: q.ID, Jobs: want})
		m.onAgentOps(&child{slot: agentSlot}, mustParse(reply))
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	got, err := m.agentJobs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("got %+v, want %+v", got, want)
	}

	m.router.table.Store(&routeTable{})
	if _, err := m.agentJobs(ctx); err != errNoAgent {
		t.Errorf("without an agent: got %v, want errNoAgent", err)
	}
}

func mustParse(f *wire.Frame) wire.Frame {
	p, err := wire.Parse(f.Encode())
	if err != nil {
		panic(err)
	}
	return p
}
