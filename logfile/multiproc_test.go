package logfile

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

type writerChild struct {
	cmd      *exec.Cmd
	stdin    io.WriteCloser
	acks     chan struct{}
	finished chan struct{}
	stderr   bytes.Buffer
	gone     chan struct{} // closed once the child exited; then waitErr is set
	waitErr  error
}

// failure describes a child that exited early; call it only after gone.
func (c *writerChild) failure() string {
	return fmt.Sprintf("child %d exited: %v; stderr: %s", c.cmd.Process.Pid, c.waitErr, c.stderr.String())
}

func startWriterChild(t *testing.T, path string, id, lines, goroutines int) *writerChild {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(),
		childEnv+"=1",
		"LOGFILE_TEST_PATH="+path,
		fmt.Sprint("LOGFILE_TEST_ID=", id),
		fmt.Sprint("LOGFILE_TEST_LINES=", lines),
		fmt.Sprint("LOGFILE_TEST_GOROUTINES=", goroutines),
	)
	c := &writerChild{cmd: cmd, acks: make(chan struct{}, 16), finished: make(chan struct{}), gone: make(chan struct{})}
	cmd.Stderr = &c.stderr
	var err error
	if c.stdin, err = cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			switch sc.Text() {
			case "reopened":
				c.acks <- struct{}{}
			case "finished":
				close(c.finished)
			}
		}
		c.waitErr = cmd.Wait()
		close(c.gone)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-c.gone
	})
	return c
}

// TestManyProcessesRotating runs writer processes that append numbered
// lines as fast as they can while this process rotates the file by size and
// on demand, tells the writers to reopen (alternately by SIGUSR1 and by a
// pipe command), waits for every one to confirm, and compresses. Every line
// must then be found exactly once, whole, in the live, rotated and gzipped
// files.
func TestManyProcessesRotating(t *testing.T) {
	const (
		children   = 4
		goroutines = 3
		lines      = 30000 // per child
	)
	dir := t.TempDir()
	path := filepath.Join(dir, "access.log")
	rot := &Rotator{Path: path, MaxSize: 64 << 10, Compress: true}

	var kids []*writerChild
	for id := range children {
		kids = append(kids, startWriterChild(t, path, id, lines, goroutines))
	}

	reopenAll := func(bySignal bool) {
		t.Helper()
		for _, k := range kids {
			var err error
			if bySignal {
				err = k.cmd.Process.Signal(syscall.SIGUSR1)
			} else {
				_, err = io.WriteString(k.stdin, "reopen\n")
			}
			if err != nil {
				t.Fatalf("tell child %d to reopen: %v", k.cmd.Process.Pid, err)
			}
		}
		for _, k := range kids {
			select {
			case <-k.acks:
			case <-k.gone:
				t.Fatal(k.failure())
			case <-time.After(20 * time.Second):
				t.Fatalf("child %d did not confirm reopen", k.cmd.Process.Pid)
			}
		}
	}
	allFinished := func() bool {
		for _, k := range kids {
			select {
			case <-k.finished:
			case <-k.gone:
				t.Fatal(k.failure())
			default:
				return false
			}
		}
		return true
	}

	var bySize, onDemand int
	var completing sync.WaitGroup
	deadline := time.Now().Add(40 * time.Second)
	for i := 0; !allFinished(); i++ {
		if time.Now().After(deadline) || i > 100000 {
			t.Fatalf("writers did not finish in time (%d size and %d on-demand rotations so far)", bySize, onDemand)
		}
		// Every third rotation is on demand (the daily schedule's kind),
		// the rest by size.
		var r *Rotation
		var err error
		if (bySize+onDemand)%3 == 2 {
			if r, err = rot.Rotate(); r != nil {
				onDemand++
			}
		} else if r, err = rot.RotateIfNeeded(); r != nil {
			bySize++
		}
		if err != nil {
			t.Fatal(err)
		}
		if r == nil {
			time.Sleep(time.Millisecond)
			continue
		}
		reopenAll((bySize+onDemand)%2 == 0)
		// Compress in the background, as the agent would, so rotation
		// goes on meanwhile; Complete must not touch later rotations.
		completing.Go(func() {
			if err := r.Complete(); err != nil {
				t.Error(err)
			}
		})
	}
	completing.Wait()
	for _, k := range kids {
		k.stdin.Close()
	}
	for _, k := range kids {
		select {
		case <-k.gone:
			if k.waitErr != nil {
				t.Fatal(k.failure())
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("child %d did not exit after its stdin closed", k.cmd.Process.Pid)
		}
	}
	t.Logf("%d size rotations, %d on-demand rotations", bySize, onDemand)
	if bySize < 5 || onDemand < 2 {
		t.Errorf("got %d size and %d on-demand rotations, want at least 5 and 2 for the test to mean anything", bySize, onDemand)
	}

	seen := map[[3]int]int{}
	files := 0
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, de := range entries {
		name := filepath.Join(dir, de.Name())
		if strings.HasSuffix(name, ".tmp") {
			t.Errorf("left behind %s", name)
			continue
		}
		if !strings.HasSuffix(name, ".gz") && name != path {
			t.Errorf("rotated file %s was not compressed", name)
		}
		files++
		readLines(t, name, func(line []byte) {
			var l struct {
				C, G, N int
				Pad     string
			}
			if err := json.Unmarshal(line, &l); err != nil {
				t.Fatalf("%s: torn line %.200q: %v", name, line, err)
			}
			if want := testLine(l.C, l.G, l.N); !bytes.Equal(append(line, '\n'), want) {
				t.Fatalf("%s: got line %.200q, want %.200q", name, line, want)
			}
			seen[[3]int{l.C, l.G, l.N}]++
		})
	}
	if files < bySize+onDemand+1 {
		t.Errorf("got %d files, want %d rotated plus the live one", files, bySize+onDemand)
	}
	missing := 0
	for c := range children {
		for g := range goroutines {
			for n := range lines / goroutines {
				switch got := seen[[3]int{c, g, n}]; got {
				case 1:
				case 0:
					missing++
					if missing <= 5 {
						t.Errorf("line c=%d g=%d n=%d missing", c, g, n)
					}
				default:
					t.Errorf("line c=%d g=%d n=%d found %d times, want once", c, g, n, got)
				}
			}
		}
	}
	if missing > 0 {
		t.Errorf("%d lines missing", missing)
	}
	if want := children * goroutines * (lines / goroutines); len(seen) != want {
		t.Errorf("got %d distinct lines, want %d", len(seen), want)
	}
}

// readLines calls fn with each line of a log file, gunzipping .gz files. A
// file whose last line lacks its newline fails the test.
func readLines(t *testing.T, name string, fn func([]byte)) {
	t.Helper()
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var r io.Reader = f
	if strings.HasSuffix(name, ".gz") {
		zr, err := gzip.NewReader(f)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		r = zr
	}
	data, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if len(data) > 0 && data[len(data)-1] != '\n' {
		t.Fatalf("%s: ends inside a line: %.100q", name, data[max(len(data)-100, 0):])
	}
	for line := range bytes.Lines(data) {
		fn(bytes.TrimSuffix(line, []byte("\n")))
	}
}
