//go:build unix

package control

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// short shortens the server's time limits for one test.
func short(t *testing.T, l limits) {
	old := defaultLimits
	defaultLimits = l
	t.Cleanup(func() { defaultLimits = old })
}

func statusHandler(_ context.Context, req Request) Response {
	switch req.Cmd {
	case CmdStatus:
		return Response{OK: true, Status: &Status{
			App: "hello", Addr: ":8080", Generation: 2, Workers: 1,
			Processes: []Process{
				{Role: "master", PID: 10, State: "ready"},
				{Role: "worker", Slot: 1, PID: 11, State: "ready", Requests: 7, RSS: 1 << 20, Generation: 2},
			},
			Jobs: json.RawMessage(`[{"name":"rotate"}]`),
		}}
	case CmdScale:
		if req.N > 8 {
			return Fail("scale: at most 8 workers, got %d", req.N)
		}
		return Response{OK: true, Message: "scaling"}
	}
	return Response{OK: true, Message: req.Cmd + " started"}
}

func listen(t *testing.T, path string, h Handler) *Server {
	t.Helper()
	s, err := Listen(path, h, nil)
	if err != nil {
		t.Fatalf("Listen(%s): %v", path, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func do(t *testing.T, path string, req Request) Response {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := Do(ctx, path, req)
	if err != nil {
		t.Fatalf("Do(%+v): %v", req, err)
	}
	return resp
}

func TestRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hello-8080.sock")
	listen(t, path, statusHandler)

	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o600 {
		t.Errorf("socket mode: got %v, want a socket with 0600", fi.Mode())
	}
	if tmps, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".*")); len(tmps) != 0 {
		t.Errorf("temporary names left behind: %v", tmps)
	}

	resp := do(t, path, Request{Cmd: CmdStatus})
	if !resp.OK || resp.Status == nil {
		t.Fatalf("status: got %+v, want ok with a status", resp)
	}
	if got := resp.Status.Processes[1]; got.Slot != 1 || got.Requests != 7 || got.RSS != 1<<20 {
		t.Errorf("worker row: got %+v", got)
	}
	if string(resp.Status.Jobs) != `[{"name":"rotate"}]` {
		t.Errorf("jobs: got %s", resp.Status.Jobs)
	}

	resp = do(t, path, Request{Cmd: CmdScale, N: 20})
	if resp.OK || resp.Error != "scale: at most 8 workers, got 20" || resp.Err() == nil {
		t.Errorf("scale 20: got %+v, want the handler's refusal", resp)
	}
	if resp = do(t, path, Request{Cmd: CmdReload}); !resp.OK || resp.Message != "reload started" || resp.Err() != nil {
		t.Errorf("reload: got %+v", resp)
	}
}

func TestConcurrentClients(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.sock")
	listen(t, path, statusHandler)
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			resp, err := Do(context.Background(), path, Request{Cmd: CmdStatus})
			if err != nil || !resp.OK {
				t.Errorf("got %+v, %v", resp, err)
			}
		})
	}
	wg.Wait()
}

func TestStaleSocketReplaced(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.sock")
	// A master that died leaves its socket file and nobody listening.
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close()
	if _, err := Do(context.Background(), path, Request{Cmd: CmdStatus}); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("Do on a stale socket: got %v, want ErrNotRunning", err)
	}

	listen(t, path, statusHandler)
	if resp := do(t, path, Request{Cmd: CmdStatus}); !resp.OK {
		t.Errorf("status after replacing the stale socket: %+v", resp)
	}
}

func TestLiveSocketRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "live.sock")
	listen(t, path, statusHandler)
	s, err := Listen(path, statusHandler, nil)
	if err == nil {
		s.Close()
		t.Fatal("second Listen on a live socket succeeded")
	}
	if !errors.Is(err, ErrRunning) || !strings.Contains(err.Error(), path) {
		t.Errorf("got %v, want ErrRunning naming %s", err, path)
	}
	if resp := do(t, path, Request{Cmd: CmdStatus}); !resp.OK {
		t.Errorf("the first server stopped answering: %+v", resp)
	}
}

func TestNotASocketRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "file.sock")
	if err := os.WriteFile(path, []byte("keep me"), 0o600); err != nil {
		t.Fatal(err)
	}
	if s, err := Listen(path, statusHandler, nil); err == nil {
		s.Close()
		t.Fatal("Listen over a regular file succeeded")
	} else if !strings.Contains(err.Error(), "not a socket") {
		t.Errorf("got %v, want it to say the path is not a socket", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "keep me" {
		t.Errorf("the file was touched: %q", b)
	}
}

// raw sends bytes as they are and returns the server's one line.
func raw(t *testing.T, path string, send func(c *net.UnixConn)) Response {
	t.Helper()
	c, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	go send(c)
	line, err := readLine(c, MaxResponseSize)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	var resp Response
	if err := json.Unmarshal(line, &resp); err != nil {
		t.Fatalf("response %q: %v", line, err)
	}
	return resp
}

func TestBadRequests(t *testing.T) {
	short(t, limits{read: 200 * time.Millisecond, write: time.Second, handler: time.Second, closeGrace: time.Second})
	path := filepath.Join(t.TempDir(), "bad.sock")
	listen(t, path, statusHandler)

	line := func(s string) func(*net.UnixConn) {
		return func(c *net.UnixConn) { io.WriteString(c, s) }
	}
	tests := []struct {
		name string
		send func(*net.UnixConn)
		want string
	}{
		{"not json", line("status\n"), "malformed request"},
		{"two objects", line(`{"cmd":"status"}{"cmd":"stop"}` + "\n"), "malformed request"},
		{"wrong type", line(`{"cmd":1}` + "\n"), "malformed request"},
		{"no cmd", line("{}\n"), `missing "cmd"`},
		{"unknown cmd", line(`{"cmd":"restart"}` + "\n"), `unknown command "restart"`},
		{"negative scale", line(`{"cmd":"scale","n":-1}` + "\n"), "at least 0"},
		{"oversized", line(strings.Repeat(" ", MaxRequestSize+10) + `{"cmd":"status"}` + "\n"), "longer than 65536 bytes"},
		{"empty", func(c *net.UnixConn) { c.CloseWrite() }, "empty"},
		{"silent", func(*net.UnixConn) {}, "timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := raw(t, path, tt.send)
			if resp.OK || !strings.Contains(resp.Error, tt.want) {
				t.Errorf("got %+v, want an error containing %q", resp, tt.want)
			}
		})
	}

	// Good requests still work after all that, with or without a newline.
	resp := raw(t, path, func(c *net.UnixConn) { io.WriteString(c, `{"cmd":"status","extra":true}`); c.CloseWrite() })
	if !resp.OK {
		t.Errorf("request ended by EOF, with an unknown field: got %+v, want ok", resp)
	}
}

func TestHandlerPanicAnswered(t *testing.T) {
	path := filepath.Join(t.TempDir(), "p.sock")
	listen(t, path, func(_ context.Context, req Request) Response {
		if req.Cmd == CmdReload {
			panic("boom")
		}
		return Response{OK: true}
	})
	if resp := do(t, path, Request{Cmd: CmdReload}); resp.OK || !strings.Contains(resp.Error, "internal error") {
		t.Errorf("panicking handler: got %+v, want an internal error", resp)
	}
	if resp := do(t, path, Request{Cmd: CmdStatus}); !resp.OK {
		t.Errorf("after a panic: got %+v, want ok", resp)
	}
}

func TestUnencodableResponse(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j.sock")
	listen(t, path, func(context.Context, Request) Response {
		return Response{OK: true, Status: &Status{Jobs: json.RawMessage("{not json")}}
	})
	if resp := do(t, path, Request{Cmd: CmdStatus}); resp.OK || !strings.Contains(resp.Error, "cannot encode") {
		t.Errorf("got %+v, want an error", resp)
	}
}

func TestCloseRemovesSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "close.sock")
	s := listen(t, path, statusHandler)
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket file after Close: got %v, want it gone", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := Do(context.Background(), path, Request{Cmd: CmdStatus}); !errors.Is(err, ErrNotRunning) {
		t.Errorf("Do after Close: got %v, want ErrNotRunning", err)
	}
}

func TestCloseLeavesAnotherSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mine.sock")
	s := listen(t, path, statusHandler)
	// Someone removed our socket and another master took the path.
	os.Remove(path)
	listen(t, path, statusHandler)
	s.Close()
	if resp := do(t, path, Request{Cmd: CmdStatus}); !resp.OK {
		t.Errorf("the other master's socket went away with ours: %+v", resp)
	}
}

func TestCloseWaitsForHandlers(t *testing.T) {
	short(t, limits{read: time.Second, write: time.Second, handler: 10 * time.Second, closeGrace: 200 * time.Millisecond})
	path := filepath.Join(t.TempDir(), "w.sock")
	started := make(chan struct{})
	release := make(chan struct{})
	s := listen(t, path, func(ctx context.Context, req Request) Response {
		close(started)
		select {
		case <-release:
			return Response{OK: true, Message: "finished"}
		case <-ctx.Done():
			return Fail("cancelled")
		}
	})
	got := make(chan Response, 1)
	go func() {
		resp, _ := Do(context.Background(), path, Request{Cmd: CmdReload})
		got <- resp
	}()
	<-started
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	select {
	case err := <-closed:
		t.Fatalf("Close returned (%v) with a handler in flight", err)
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	if err := <-closed; err != nil {
		t.Errorf("Close: %v", err)
	}
	if resp := <-got; resp.Message != "finished" {
		t.Errorf("in-flight request: got %+v, want it finished", resp)
	}
}

func TestCloseBounded(t *testing.T) {
	short(t, limits{read: time.Second, write: time.Second, handler: 10 * time.Second, closeGrace: 100 * time.Millisecond})
	path := filepath.Join(t.TempDir(), "b.sock")
	started := make(chan struct{})
	s := listen(t, path, func(ctx context.Context, _ Request) Response {
		close(started)
		<-ctx.Done() // ends only when Close cancels it
		return Fail("cancelled")
	})
	go Do(context.Background(), path, Request{Cmd: CmdStop})
	<-started
	start := time.Now()
	if err := s.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Close took %v, want about the 100ms grace", d)
	}
}

func TestDoCancelled(t *testing.T) {
	short(t, limits{read: time.Second, write: time.Second, handler: 10 * time.Second, closeGrace: 100 * time.Millisecond})
	path := filepath.Join(t.TempDir(), "slow.sock")
	listen(t, path, func(context.Context, Request) Response {
		time.Sleep(500 * time.Millisecond) // stuck, heedless of its context
		return Response{}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := Do(ctx, path, Request{Cmd: CmdStatus})
	if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("got %v, want a deadline error", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Do took %v past its deadline", d)
	}
}

func TestDoRefusesBadRequest(t *testing.T) {
	if _, err := Do(context.Background(), "/nonexistent.sock", Request{Cmd: "bogus"}); err == nil || !strings.Contains(err.Error(), "unknown command") {
		t.Errorf("got %v, want an unknown command error before dialing", err)
	}
}

func TestLongPathRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), strings.Repeat("x", 120)+".sock")
	if s, err := Listen(path, statusHandler, nil); err == nil {
		s.Close()
		t.Fatal("Listen on a too-long path succeeded")
	} else if !errors.Is(err, ErrPathTooLong) || !strings.Contains(err.Error(), path) {
		t.Errorf("got %v, want ErrPathTooLong naming the path", err)
	}
	t.Setenv("XDG_RUNTIME_DIR", "")
	if _, err := DefaultPath(strings.Repeat("a", 200), 8080); !errors.Is(err, ErrPathTooLong) {
		t.Errorf("DefaultPath with a long app name: got %v, want ErrPathTooLong", err)
	}
}

func TestCreatesPrivateDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b")
	listen(t, filepath.Join(dir, "x.sock"), statusHandler)
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o700 {
		t.Errorf("created directory mode: got %v, want 0700", fi.Mode().Perm())
	}
}

func TestDefaultDir(t *testing.T) {
	private := t.TempDir()
	open := t.TempDir()
	os.Chmod(open, 0o777)
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	fallback := filepath.Join(tmp, "brood-"+userTag())

	tests := []struct{ xdg, want string }{
		{private, filepath.Join(private, "brood")},
		{"", fallback},
		{"relative/dir", fallback},
		{filepath.Join(private, "missing"), fallback},
		{open, fallback},
	}
	for _, tt := range tests {
		t.Setenv("XDG_RUNTIME_DIR", tt.xdg)
		if got := DefaultDir(); got != tt.want {
			t.Errorf("XDG_RUNTIME_DIR=%q: got %s, want %s", tt.xdg, got, tt.want)
		}
	}

	t.Setenv("XDG_RUNTIME_DIR", private)
	got, err := DefaultPath("my app/v2", 8080)
	if want := filepath.Join(private, "brood", "my_app_v2-8080.sock"); err != nil || got != want {
		t.Errorf("DefaultPath: got %q, %v; want %s", got, err, want)
	}
	if _, err := DefaultPath("", 8080); err == nil {
		t.Error("DefaultPath with no app name succeeded")
	}

	// Listen on the default path creates the directory 0700.
	listen(t, got, statusHandler)
	if fi, err := os.Stat(filepath.Dir(got)); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("default directory: got %v, %v; want mode 0700", fi.Mode(), err)
	}
}

// A default directory that is not safe to use (someone else made it first,
// or it is not private) is neither used by the master, which makes a
// private one beside it instead, nor trusted by the client.
func TestUnsafeDefaultDirAvoided(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	t.Setenv("XDG_RUNTIME_DIR", "")
	dir := DefaultDir()
	tests := []struct {
		name  string
		setup func() error
		want  string
	}{
		{"world writable", func() error { return os.Chmod(dir, 0o777) }, "writable by others"},
		{"group writable", func() error { return os.Chmod(dir, 0o770) }, "writable by others"},
		{"a file", func() error {
			os.Remove(dir)
			return os.WriteFile(dir, nil, 0o600)
		}, "not a directory"},
		{"a symlink", func() error {
			os.Remove(dir)
			return os.Symlink(t.TempDir(), dir)
		}, "not a directory"},
		{"someone else's", func() error {
			if os.Getuid() != 0 {
				t.Skip("needs root to give a directory away")
			}
			os.Remove(dir)
			if err := os.Mkdir(dir, 0o755); err != nil {
				return err
			}
			return os.Chown(dir, 65534, 65534)
		}, "owned by uid 65534"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			os.RemoveAll(dir)
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := tt.setup(); err != nil {
				t.Fatal(err)
			}
			path, err := DefaultPath("app", 1)
			if err != nil {
				t.Fatal(err)
			}
			s, err := Listen(path, statusHandler, nil)
			if err != nil {
				t.Fatalf("Listen with the default directory %s: %v; want it to use a private one instead", tt.name, err)
			}
			made := filepath.Dir(s.Path())
			if made == dir || !strings.HasPrefix(filepath.Base(made), fallbackPrefix()) {
				t.Errorf("socket at %s, want it in a new brood-<uid>.* directory", s.Path())
			}
			if fi, err := os.Lstat(made); err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o700 {
				t.Errorf("fallback directory %s: %v, %v; want a directory of mode 0700", made, fi.Mode(), err)
			}
			if !slices.Contains(SearchDirs(), made) {
				t.Errorf("SearchDirs() = %v; want it to list %s", SearchDirs(), made)
			}
			if r := do(t, s.Path(), Request{Cmd: CmdStatus}); !r.OK {
				t.Errorf("status through the fallback: %+v", r)
			}
			// The client refuses the unsafe directory itself.
			_, err = Do(context.Background(), path, Request{Cmd: CmdStop})
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), dir) {
				t.Errorf("Do in the unsafe directory: got %v, want it to name %s and say %q", err, dir, tt.want)
			}
			s.Close()
			if _, err := os.Lstat(made); !os.IsNotExist(err) {
				t.Errorf("the fallback directory outlived Close: %v", err)
			}
		})
	}
}
