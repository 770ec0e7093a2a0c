package framework

import (
	"context"
	"encoding/json"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/broodhq/brood/app"
	ct "github.com/broodhq/brood/internal/clustertest"
)

func init() {
	testApps["app-jobs"] = func() error {
		noop := func(context.Context) error { return nil }
		return Run(testRouter(), withRestartMin(20*time.Millisecond), WithApp(func(a *app.App) error {
			a.Every(150*time.Millisecond, "one", noop, app.OneWorker)
			a.Every(150*time.Millisecond, "all", noop, app.AllWorkers)
			a.Every(150*time.Millisecond, "boom", func(context.Context) error { panic("boom") }, app.OneWorker)
			return nil
		}))
	}
}

type jobRun struct {
	job  string
	tick int
	pid  int
}

// jobRuns returns the worker-side runs the cluster has logged, from record
// index `from` on, and the index to read from next.
func jobRuns(c *ct.Cluster, from int, msg string) ([]jobRun, int) {
	lines := strings.Split(c.Output(), "\n")
	var out []jobRun
	n := 0
	for _, l := range lines {
		var rec struct {
			Msg  string  `json:"msg"`
			Job  string  `json:"job"`
			Tick float64 `json:"tick"`
			PID  float64 `json:"pid"`
			Role string  `json:"role"`
		}
		if json.Unmarshal([]byte(l), &rec) != nil {
			continue
		}
		n++
		if n <= from || rec.Msg != msg || rec.Role != "worker" {
			continue
		}
		out = append(out, jobRun{rec.Job, int(rec.Tick), int(rec.PID)})
	}
	return out, n
}

func TestWorkerSchedulesOneAndAllWorkers(t *testing.T) {
	c := ct.Start(t, "app-jobs", local, "BROOD_WORKERS=3")
	c.WaitReady(30 * time.Second)

	// Wait for 12 ticks of each; ticks come every 150ms.
	var runs []jobRun
	for i := 0; i < 200; i++ {
		runs, _ = jobRuns(c, 0, "scheduled job done")
		ones, alls := 0, 0
		for _, r := range runs {
			if r.job == "one" {
				ones++
			}
			if r.job == "all" && r.tick >= 12 {
				alls++
			}
		}
		if ones >= 12 && alls == 3 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	oneByTick := map[int][]int{}
	allByTick := map[int][]int{}
	for _, r := range runs {
		switch r.job {
		case "one":
			oneByTick[r.tick] = append(oneByTick[r.tick], r.pid)
		case "all":
			allByTick[r.tick] = append(allByTick[r.tick], r.pid)
		}
	}
	onePIDs := map[int]bool{}
	for tick, pids := range oneByTick {
		if len(pids) != 1 {
			t.Errorf("one-worker job tick %d ran in %d workers %v, want 1", tick, len(pids), pids)
		}
		onePIDs[pids[0]] = true
	}
	if len(oneByTick) < 12 {
		t.Fatalf("one-worker job ran %d ticks, want at least 12", len(oneByTick))
	}
	if len(onePIDs) < 2 {
		t.Errorf("one-worker job ran in %d distinct workers over %d ticks, want them spread", len(onePIDs), len(oneByTick))
	}
	// The first ticks may come before every worker's readiness has reached
	// the agent; from the third on, every tick reaches all three.
	for tick := 3; tick <= 12; tick++ {
		pids := allByTick[tick]
		distinct := map[int]bool{}
		for _, p := range pids {
			distinct[p] = true
		}
		if len(pids) != 3 || len(distinct) != 3 {
			t.Errorf("all-workers job tick %d ran in %v, want each of the 3 workers once", tick, pids)
		}
	}

	// The panicking job keeps its schedule.
	panics, _ := jobRuns(c, 0, "scheduled job panicked")
	if len(panics) < 2 {
		t.Errorf("panicking job logged %d panics, want it to keep running", len(panics))
	}

	// Kill the agent: the new one gets the schedules again and drives them.
	var agentPID int
	if l, _, err := c.WaitLog(time.Second, 0, func(m map[string]any) bool { return m["role"] == "agent" }); err != nil {
		t.Fatal(err)
	} else {
		agentPID = int(l["pid"].(float64))
	}
	_, mark := jobRuns(c, 0, "")
	if err := syscall.Kill(agentPID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.WaitLog(20*time.Second, mark, func(m map[string]any) bool {
		return m["msg"] == "replacement ready" && m["child"] == "agent"
	}); err != nil {
		t.Fatalf("no new agent: %v", err)
	}
	for i := 0; i < 200; i++ {
		after, _ := jobRuns(c, mark, "scheduled job done")
		ones := 0
		for _, r := range after {
			if r.job == "one" {
				ones++
			}
		}
		if ones >= 3 {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatal("worker schedules did not resume within 20s of the agent's restart")
}
