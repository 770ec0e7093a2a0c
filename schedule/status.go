package schedule

import (
	"slices"
	"strings"
	"time"
)

// JobStatus is a snapshot of one job, shaped for a status command to print.
type JobStatus struct {
	Name string `json:"name"`
	// Schedule is "every 1m0s" for Every jobs and the spec for Cron jobs.
	Schedule string `json:"schedule"`
	// LastStart is when the latest run started; zero if none has.
	LastStart time.Time `json:"last_start,omitzero"`
	// LastDuration and LastError describe the latest finished run; LastError
	// is empty if that run succeeded.
	LastDuration time.Duration `json:"last_duration"`
	LastError    string        `json:"last_error,omitempty"`
	// NextRun is zero before Start, after Stop, and for a spec with no
	// further times.
	NextRun time.Time `json:"next_run,omitzero"`
	Running bool      `json:"running"`
	// Runs counts runs started; Skipped counts ticks dropped because the
	// previous run was still going; Failures counts runs that returned an
	// error or panicked.
	Runs     int64 `json:"runs"`
	Skipped  int64 `json:"skipped"`
	Failures int64 `json:"failures"`
}

// Status returns every job's status, sorted by name.
func (s *Scheduler) Status() []JobStatus {
	s.mu.Lock()
	out := make([]JobStatus, 0, len(s.jobs))
	for _, j := range s.jobs {
		out = append(out, JobStatus{
			Name:         j.name,
			Schedule:     j.timing.String(),
			LastStart:    j.lastStart,
			LastDuration: j.lastDuration,
			LastError:    j.lastErr,
			NextRun:      j.next,
			Running:      j.running > 0,
			Runs:         j.runs,
			Skipped:      j.skipped,
			Failures:     j.failures,
		})
	}
	s.mu.Unlock()
	slices.SortFunc(out, func(a, b JobStatus) int { return strings.Compare(a.Name, b.Name) })
	return out
}
