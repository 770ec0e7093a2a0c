//go:build unix

package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/broodhq/brood/internal/clustertest"
	"github.com/broodhq/brood/internal/control"
)

func TestPprofRequest(t *testing.T) {
	for _, c := range []struct {
		args    []string
		want    control.Request
		wantErr string
	}{
		{args: []string{"worker", "2", "heap"}, want: control.Request{Cmd: "pprof", Target: "worker", Slot: 2, Profile: "heap"}},
		{args: []string{"agent", "cpu"}, want: control.Request{Cmd: "pprof", Target: "agent", Profile: "cpu"}},
		{args: []string{"master", "trace"}, want: control.Request{Cmd: "pprof", Target: "master", Profile: "trace"}},
		{args: []string{"worker", "heap"}, wantErr: "want a slot number"},
		{args: []string{"worker", "0", "heap"}, wantErr: "worker slot 0"},
		{args: []string{"agent", "cpus"}, wantErr: `unknown profile "cpus"`},
		{args: []string{"db", "cpu"}, wantErr: `target "db"`},
		{args: []string{"agent"}, wantErr: "pprof needs whose profile"},
	} {
		got, err := pprofRequest(c.args, 0)
		if c.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("%v: got error %v, want one saying %q", c.args, err, c.wantErr)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("%v: got %+v, %v; want %+v", c.args, got, err, c.want)
		}
	}
	if got := pprofFile(control.Request{Target: "worker", Slot: 3, Profile: "heap"}, started); got != "worker-3.heap.20250102-100000.pb.gz" {
		t.Errorf("file name: got %s", got)
	}
}

// TestPprofReadable takes profiles of a real cluster's worker, agent and
// master through broodctl and reads them with go tool pprof.
func TestPprofReadable(t *testing.T) {
	goTool := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(goTool); err != nil {
		if goTool, err = exec.LookPath("go"); err != nil {
			t.Skip("no go command to read the profiles with")
		}
	}
	dir := t.TempDir()
	sock := filepath.Join(dir, "ctl.sock")
	c := clustertest.Start(t, "light", "BROOD_WORKERS=2", "BROOD_ADDR=127.0.0.1:0", "BROOD_CONTROL_SOCKET="+sock)
	c.WaitReady(30 * time.Second)
	load := clustertest.StartLoad(c.URL("/"), 2, false, 30*time.Second)
	defer load.Stop()

	// Whose profile it is shows in its goroutines' stacks.
	for _, tc := range []struct {
		args []string
		want string // in go tool pprof -traces
	}{
		{[]string{"worker", "2", "heap"}, ""},
		{[]string{"worker", "1", "cpu"}, ""},
		{[]string{"worker", "2", "goroutine"}, "internal/worker."},
		{[]string{"agent", "cpu"}, ""},
		{[]string{"agent", "goroutine"}, "internal/agentproc."},
		{[]string{"master", "goroutine"}, "internal/master."},
	} {
		args := tc.args
		name := strings.Join(args, "-")
		t.Run(name, func(t *testing.T) {
			file := filepath.Join(dir, name+".pb.gz")
			code, out, errs := runCtl(append([]string{"-socket", sock, "-seconds", "1", "-o", file, "pprof"}, args...)...)
			if code != 0 || !strings.Contains(out, "go tool pprof "+file) {
				t.Fatalf("got exit %d, stdout %q, stderr %q; want 0 and how to read %s", code, out, errs, file)
			}
			top, err := exec.Command(goTool, "tool", "pprof", "-top", file).CombinedOutput()
			if err != nil || !strings.Contains(string(top), "flat%") {
				t.Fatalf("go tool pprof -top %s: %v:\n%s", file, err, top)
			}
			if tc.want == "" {
				return
			}
			traces, err := exec.Command(goTool, "tool", "pprof", "-traces", file).CombinedOutput()
			if err != nil || !strings.Contains(string(traces), tc.want) {
				t.Errorf("go tool pprof -traces %s: %v; want stacks with %s in them:\n%s", file, err, tc.want, traces)
			}
		})
	}
	t.Run("trace", func(t *testing.T) {
		file := filepath.Join(dir, "worker.trace")
		if code, _, errs := runCtl("-socket", sock, "-seconds", "1", "-o", file, "pprof", "worker", "1", "trace"); code != 0 {
			t.Fatalf("exit %d: %s", code, errs)
		}
		data, err := os.ReadFile(file)
		if err != nil || !strings.HasPrefix(string(data), "go 1.") {
			t.Fatalf("not a Go trace (%v): starts %q", err, data[:min(len(data), 16)])
		}
	})
	t.Run("no such worker", func(t *testing.T) {
		code, _, errs := runCtl("-socket", sock, "-o", filepath.Join(dir, "x"), "pprof", "worker", "9", "heap")
		if code != 1 || !strings.Contains(errs, "there is no worker 9") {
			t.Errorf("got exit %d, stderr %q; want 1 and that there is no worker 9", code, errs)
		}
	})
}
