package workerjobs

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/broodhq/brood/schedule"
)

func TestAddValidates(t *testing.T) {
	noop := func(context.Context) error { return nil }
	tests := []struct {
		name string
		spec Spec
		fn   func(context.Context) error
		want error
	}{
		{"zero interval", Spec{Name: "a"}, noop, schedule.ErrInvalidSchedule},
		{"bad cron", Spec{Name: "a", Cron: "every day"}, noop, schedule.ErrInvalidSchedule},
		{"nil job", Spec{Name: "a", Every: time.Second}, nil, nil},
		{"no name", Spec{Every: time.Second}, noop, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := New().Add(tt.spec, tt.fn)
			if err == nil || (tt.want != nil && !errors.Is(err, tt.want)) {
				t.Errorf("got %v, want an error wrapping %v", err, tt.want)
			}
		})
	}
	r := New()
	if err := r.Add(Spec{Name: "a", Cron: "@hourly"}, noop); err != nil {
		t.Fatal(err)
	}
	if err := r.Add(Spec{Name: "a", Every: time.Second}, noop); !errors.Is(err, schedule.ErrDuplicateName) {
		t.Errorf("duplicate: got %v, want ErrDuplicateName", err)
	}
	if got := r.Specs(); len(got) != 1 || got[0].Schedule() != "@hourly" {
		t.Errorf("got specs %+v, want the one @hourly", got)
	}
}

func TestRunDoesNotOverlapAndStopWaits(t *testing.T) {
	r := New()
	started, release := make(chan struct{}), make(chan struct{})
	_ = r.Add(Spec{Name: "slow", Every: time.Second}, func(ctx context.Context) error {
		close(started)
		<-release
		return ctx.Err() // Stop cancels ctx before it waits
	})
	_ = r.Add(Spec{Name: "boom", Every: time.Second}, func(context.Context) error { panic("boom") })

	var pe *PanicError
	if err := r.Run("boom"); !errors.As(err, &pe) || pe.Value != "boom" || len(pe.Stack) == 0 {
		t.Errorf("panicking job: got %v, want a *PanicError with its stack", err)
	}
	if err := r.Run("nope"); !errors.Is(err, ErrUnknownJob) {
		t.Errorf("unknown job: got %v, want ErrUnknownJob", err)
	}

	first := make(chan error, 1)
	go func() { first <- r.Run("slow") }()
	<-started
	if err := r.Run("slow"); !errors.Is(err, ErrBusy) {
		t.Errorf("second run while the first is going: got %v, want ErrBusy", err)
	}

	stopped := make(chan error, 1)
	go func() { stopped <- r.Stop(context.Background()) }()
	select {
	case err := <-stopped:
		t.Fatalf("Stop returned %v while a job was running", err)
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	if err := <-first; !errors.Is(err, context.Canceled) {
		t.Errorf("running job's context: got %v, want canceled by Stop", err)
	}
	if err := <-stopped; err != nil {
		t.Errorf("Stop: %v", err)
	}
	if err := r.Run("slow"); !errors.Is(err, ErrStopping) {
		t.Errorf("after Stop: got %v, want ErrStopping", err)
	}
}
