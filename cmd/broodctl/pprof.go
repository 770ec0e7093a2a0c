package main

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/broodhq/brood/internal/control"
)

// pprofRequest parses "pprof master|agent|worker N KIND".
func pprofRequest(args []string, seconds int) (control.Request, error) {
	req := control.Request{Cmd: control.CmdPprof, Seconds: seconds}
	const want = "pprof needs whose profile and which: broodctl pprof master|agent|worker N cpu|heap|allocs|goroutine|mutex|block|threadcreate|trace"
	if len(args) < 2 {
		return req, errors.New(want)
	}
	req.Target, args = args[0], args[1:]
	if req.Target == control.TargetWorker {
		n, err := strconv.Atoi(args[0])
		if err != nil || len(args) < 2 {
			return req, fmt.Errorf("pprof worker: want a slot number, then the profile: broodctl pprof worker 2 heap")
		}
		req.Slot, args = n, args[1:]
	}
	if len(args) != 1 {
		return req, errors.New(want)
	}
	req.Profile = args[0]
	return req, req.Validate()
}

// pprofFile is where a profile goes unless -o says: worker-2.heap.pb.gz,
// agent.trace, with the time so that runs do not overwrite each other.
func pprofFile(req control.Request, now time.Time) string {
	who := req.Target
	if req.Target == control.TargetWorker {
		who += "-" + strconv.Itoa(req.Slot)
	}
	ext := ".pb.gz"
	if req.Profile == "trace" {
		ext = ".trace"
	}
	return fmt.Sprintf("%s.%s.%s%s", who, req.Profile, now.Format("20060102-150405"), ext)
}

// writeProfile saves data and says how to read it.
func writeProfile(path string, req control.Request, data []byte) (string, error) {
	if len(data) == 0 {
		return "", errors.New("pprof: the master sent an empty profile")
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return "", fmt.Errorf("pprof: %w", err)
	}
	tool := "go tool pprof"
	if req.Profile == "trace" {
		tool = "go tool trace"
	}
	return fmt.Sprintf("wrote %s (%s); read it with: %s %s", path, size(int64(len(data))), tool, path), nil
}
