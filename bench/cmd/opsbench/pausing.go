package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"syscall"
	"time"
)

// The scenarios of issue 11: keep-alive clients that pause between
// requests, through reloads (a draining worker that closes idle
// connections early races their next request), and a stop sent while a
// reload runs (which must still end the master).

// beginPausing starts brood with only pausing clients.
func beginPausing(ctx context.Context, o options, r *result, b bins) (*session, error) {
	if err := deploy(b.good, b.deployed); err != nil {
		return nil, err
	}
	r.Pausing = true
	r.Notes = append(r.Notes, fmt.Sprintf("%d keep-alive clients, each pausing a random 0-%s between requests, no other load", o.pausing, o.maxPause))
	return beginWith(ctx, o, r, "brood", b.deployed, broodEnv(), func(addr string) *load {
		return startPausingLoad(addr, o.pausing, o.maxPause, o.timeout)
	})
}

// pausingReloads: o.pausingReloads reloads under the pausing clients.
func pausingReloads(ctx context.Context, o options, b bins) (*result, error) {
	r := &result{Scenario: fmt.Sprintf("pausing, %d reloads", o.pausingReloads), Server: "brood"}
	s, err := beginPausing(ctx, o, r, b)
	if err != nil {
		return nil, err
	}
	var errs []error
	for i := range o.pausingReloads {
		if err := deploy(b.good, b.deployed); err != nil {
			errs = append(errs, err)
			break
		}
		// A pause longer than any client's, so that every one of them
		// comes back to its old worker before the next reload.
		o := o
		o.gap = max(o.gap, o.maxPause+time.Second)
		if _, err := s.do(ctx, o, fmt.Sprintf("reload %d", i+1), syscall.SIGHUP, "reload complete", "reload failed", "reload rolled back"); err != nil {
			errs = append(errs, err)
			break
		}
	}
	if err := s.drained(ctx, o, 3); err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, s.end(o))
	return r, errors.Join(errs...)
}

// pausingSteady: the same clients for o.pausingFor without a reload, the
// baseline a reload must not be worse than.
func pausingSteady(ctx context.Context, o options, b bins) (*result, error) {
	r := &result{Scenario: "pausing, no reload", Server: "brood"}
	s, err := beginPausing(ctx, o, r, b)
	if err != nil {
		return nil, err
	}
	err = settle(ctx, o.pausingFor)
	return r, errors.Join(err, s.end(o))
}

// stopDuringReload: o.stopTries times, start brood under load, HUP it,
// TERM it o.stopAfter later, and measure how long the master takes to
// exit and how. Requests after the TERM may fail (the server is going
// away); the ones before must not.
func stopDuringReload(ctx context.Context, o options, b bins) ([]*result, error) {
	var results []*result
	var errs []error
	for i := range o.stopTries {
		r := &result{Scenario: fmt.Sprintf("stop during reload %d", i+1), Server: "brood"}
		s, err := beginBrood(ctx, o, r, b)
		if err != nil {
			return results, errors.Join(append(errs, err)...)
		}
		results = append(results, r)
		if err := deploy(b.good, b.deployed); err != nil {
			errs = append(errs, err)
		}
		hup := time.Now()
		s.srv.signal(syscall.SIGHUP)
		time.Sleep(o.stopAfter)
		term := time.Now()
		s.srv.signal(syscall.SIGTERM)
		r.Ops = append(r.Ops, op{What: "HUP, then TERM", Start: hup, Done: term})
		const bound = 45 * time.Second // beyond the 30s shutdown timeout and the kill grace
		select {
		case <-s.srv.exited:
			st := s.srv.cmd.ProcessState
			r.Notes = append(r.Notes, fmt.Sprintf("TERM %s after the HUP: the master exited %s after the TERM (%v)", o.stopAfter, ms(time.Since(term)), st))
			if !st.Success() {
				errs = append(errs, fmt.Errorf("%s: the master exited with %v", r.Scenario, st))
			}
		case <-time.After(bound):
			r.Notes = append(r.Notes, fmt.Sprintf("TERM %s after the HUP: the master was still running %s after the TERM", o.stopAfter, bound))
			errs = append(errs, fmt.Errorf("%s: the master did not exit within %s of a TERM during a reload", r.Scenario, bound))
		case <-ctx.Done():
		}
		// The tallies include the requests after the TERM; split them.
		errs = append(errs, s.end(o))
		early := func(fs []failure) []failure {
			return slices.DeleteFunc(fs, func(f failure) bool { return !f.At.Before(term) })
		}
		// Only those are listed; the counts keep them all.
		r.KeepAlive.Failures, r.Fresh.Failures = early(r.KeepAlive.Failures), early(r.Fresh.Failures)
		before := len(r.KeepAlive.Failures) + len(r.Fresh.Failures)
		r.Notes = append(r.Notes, fmt.Sprintf("%d failed requests before the TERM (the failures after it are the server going away)", before))
		if before > 0 {
			errs = append(errs, fmt.Errorf("%s: %d requests failed before the TERM", r.Scenario, before))
		}
		if ctx.Err() != nil {
			break
		}
	}
	return results, errors.Join(errs...)
}
