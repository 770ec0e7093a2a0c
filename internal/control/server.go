package control

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime/debug"
	"sync"
	"time"
)

// ErrRunning means another master already answers on the socket path.
var ErrRunning = errors.New("another brood master is running")

// Handler answers one request. It runs on the connection's goroutine with a
// context that ends after 30 seconds or when the server closes, so it
// must not wait for anything that itself waits for Server.Close: "stop"
// starts the stop and returns.
type Handler func(ctx context.Context, req Request) Response

// limits are the server's time limits. A client that connects and says
// nothing must not hold a goroutine; a handler gets longer, since status asks
// every child; closeGrace bounds how long Close waits for handlers before it
// cancels their context and closes their connections.
type limits struct {
	read, write, handler, closeGrace time.Duration
}

// defaultLimits is a variable so tests can shorten it before Listen, which
// copies it.
var defaultLimits = limits{
	read:       5 * time.Second,
	write:      5 * time.Second,
	handler:    30 * time.Second,
	closeGrace: 5 * time.Second,
}

// Server serves the control protocol on a Unix socket.
type Server struct {
	path    string
	madeDir string // a fallback directory Listen made (prepareDefault), removed by Close
	ln      *net.UnixListener
	sock    os.FileInfo // the socket file we made, so Close removes only ours
	h       Handler
	log     *slog.Logger
	ctx     context.Context
	cancel  context.CancelFunc
	limits  limits

	accepting chan struct{} // closed when the accept loop returns
	handlers  sync.WaitGroup

	mu    sync.Mutex
	conns map[net.Conn]struct{}

	closeOnce sync.Once
	closeErr  error
}

// Listen serves h on a Unix socket at path, mode 0600. It creates a missing
// directory with mode 0700 and refuses a directory it created, or the
// default one, that is not private to us. It refuses a path where a live
// master answers (ErrRunning) and replaces a stale socket file left by a
// master that died. log may be nil.
func Listen(path string, h Handler, log *slog.Logger) (*Server, error) {
	if path == "" {
		return nil, errors.New("control socket: empty path")
	}
	if h == nil {
		return nil, errors.New("control socket: nil handler")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := checkLen(path); err != nil {
		return nil, err
	}
	path, madeDir, err := prepareDefault(path, log)
	if err != nil {
		return nil, err
	}
	ln, err := bind(path, log)
	if err != nil {
		removeDir(madeDir)
		return nil, err
	}
	sock, err := os.Lstat(path)
	if err != nil {
		ln.Close()
		removeDir(madeDir)
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		path: path, madeDir: madeDir, ln: ln, sock: sock, h: h, log: log,
		ctx: ctx, cancel: cancel, limits: defaultLimits,
		accepting: make(chan struct{}),
		conns:     make(map[net.Conn]struct{}),
	}
	go s.accept()
	return s, nil
}

// prepareDefault prepares path's directory. When that is the default
// directory and it is not safe to use (another user made it first, say),
// the socket goes into a fresh private directory beside it instead
// (SearchDirs finds it), rather than the master refusing to start.
func prepareDefault(path string, log *slog.Logger) (string, string, error) {
	dir := filepath.Dir(path)
	err := prepareDir(dir)
	var unsafe *unsafeDirError
	if err == nil || !isDefaultDir(dir) || !errors.As(err, &unsafe) {
		return path, "", err
	}
	made, merr := os.MkdirTemp(os.TempDir(), fallbackPrefix()) // 0700, a name nobody could take first
	if merr != nil {
		return "", "", fmt.Errorf("%w; and no private directory could be made instead: %w", err, merr)
	}
	moved := filepath.Join(made, filepath.Base(path))
	if err := checkLen(moved); err != nil {
		removeDir(made)
		return "", "", err
	}
	log.Warn("the default control socket directory is not safe to use; using a private one instead (broodctl finds it)",
		"unsafe", dir, "reason", err.Error(), "dir", made)
	return moved, made, nil
}

func removeDir(dir string) {
	if dir != "" {
		os.Remove(dir) // only if empty: nothing else of ours is lost
	}
}

// Path is the socket's path.
func (s *Server) Path() string { return s.path }

// Close stops accepting, removes the socket file (if it is still the one
// Listen made), and waits for handlers in flight: up to 5 seconds, then it
// cancels their context, closes their connections and waits one more
// second. It is safe to call more than once.
func (s *Server) Close() error {
	s.closeOnce.Do(func() { s.closeErr = s.shutdown() })
	return s.closeErr
}

func (s *Server) shutdown() error {
	s.ln.Close()
	<-s.accepting
	// Remove before waiting, so broodctl says "not running" at once.
	if fi, err := os.Lstat(s.path); err == nil && os.SameFile(fi, s.sock) {
		if err := os.Remove(s.path); err != nil {
			s.log.Warn("control socket not removed", "path", s.path, "err", err)
		}
	}
	removeDir(s.madeDir)
	defer s.cancel()
	done := make(chan struct{})
	go func() { s.handlers.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-time.After(s.limits.closeGrace):
	}
	s.cancel()
	s.mu.Lock()
	n := len(s.conns)
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	select {
	case <-done:
		return nil
	case <-time.After(time.Second):
		return fmt.Errorf("control socket %s: %d handlers still running %s after close", s.path, n, s.limits.closeGrace+time.Second)
	}
}

func (s *Server) accept() {
	defer close(s.accepting)
	var backoff time.Duration
	for {
		c, err := s.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: wait, as net/http does,
			// rather than spin or give up on the operators' only way in.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.log.Warn("control socket accept", "path", s.path, "err", err, "retry_in", backoff)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		s.mu.Lock()
		s.conns[c] = struct{}{}
		s.handlers.Add(1)
		s.mu.Unlock()
		go s.serve(c)
	}
}

func (s *Server) serve(c net.Conn) {
	defer func() {
		c.Close()
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		s.handlers.Done()
	}()
	c.SetReadDeadline(time.Now().Add(s.limits.read))
	req, err := readRequest(c)
	if err == nil {
		// The socket's mode keeps other users out; this is for a socket
		// whose mode or directory someone loosened. Read first: a client
		// answered before it wrote would only see a broken pipe.
		err = checkPeer(c)
	}
	var resp Response
	if err == nil {
		err = req.Validate()
	}
	if dl := req.Deadline(); err == nil && !dl.IsZero() && time.Now().After(dl) {
		// Read too late (this process was stopped, or very busy): the
		// client has given up, and said the command failed.
		s.log.Warn("control request arrived after its client stopped waiting; not carried out",
			"cmd", req.Cmd, "late_by", time.Since(dl).Round(time.Millisecond).String())
		err = fmt.Errorf("%s: arrived %s after its deadline; not carried out", req.Cmd, time.Since(dl).Round(time.Millisecond))
	}
	if err != nil {
		level := slog.LevelWarn
		if errors.Is(err, errEmpty) {
			level = slog.LevelDebug
		}
		s.log.Log(context.Background(), level, "control request refused", "err", err)
		resp = Response{Error: err.Error()}
	} else {
		resp = s.call(req)
	}
	line, err := json.Marshal(resp)
	if err != nil { // a handler's Jobs that are not valid JSON
		s.log.Error("control response not encodable", "cmd", req.Cmd, "err", err)
		line, _ = json.Marshal(Response{Error: req.Cmd + ": the master built a response it cannot encode (see its log)"})
	}
	c.SetWriteDeadline(time.Now().Add(s.limits.write))
	if _, err := c.Write(append(line, '\n')); err != nil {
		s.log.Debug("control response not sent", "cmd", req.Cmd, "err", err)
	}
}

// call runs the handler so that its panic costs one refused request, not
// the master.
func (s *Server) call(req Request) (resp Response) {
	ctx, cancel := context.WithTimeout(s.ctx, s.limits.handler)
	defer cancel()
	if dl := req.Deadline(); !dl.IsZero() {
		// A handler that has not begun the command by then does not.
		var cancelDL context.CancelFunc
		ctx, cancelDL = context.WithDeadline(ctx, dl)
		defer cancelDL()
	}
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("control handler panicked", "cmd", req.Cmd, "panic", p, "stack", string(debug.Stack()))
			resp = Response{Error: req.Cmd + ": internal error in the master (see its log)"}
		}
	}()
	s.log.Debug("control request", "cmd", req.Cmd, "n", req.N)
	resp = s.h(ctx, req)
	if !resp.OK && resp.Error == "" {
		resp.Error = req.Cmd + ": refused"
	}
	return resp
}

// readRequest reads one line, or everything up to EOF when the client
// half-closes without a newline.
func readRequest(r io.Reader) (Request, error) {
	line, err := readLine(r, MaxRequestSize)
	if err != nil {
		return Request{}, fmt.Errorf("read request: %w", err)
	}
	var req Request
	if err := json.Unmarshal(line, &req); err != nil {
		return Request{}, fmt.Errorf(`malformed request: %w; want one JSON object on one line, like {"cmd":"status"}`, err)
	}
	return req, nil
}

// errEmpty is a connection closed without a request: broodctl does that
// when it probes which sockets are alive, so it is not worth a warning.
var errEmpty = errors.New("empty: connection closed before a line arrived")

// readLine returns one line without its newline, at most limit bytes.
func readLine(r io.Reader, limit int) ([]byte, error) {
	br := bufio.NewReader(io.LimitReader(r, int64(limit)+1))
	line, err := br.ReadBytes('\n')
	switch {
	case len(line) > limit:
		return nil, fmt.Errorf("longer than %d bytes", limit)
	case err == io.EOF && len(bytes.TrimSpace(line)) == 0:
		return nil, errEmpty
	case err != nil && err != io.EOF:
		return nil, err
	}
	return bytes.TrimSpace(line), nil
}

// clearStale removes a socket file nobody answers on, and refuses to touch
// anything else at path.
func clearStale(path string, log *slog.Logger) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("control socket %s: %w", path, err)
	}
	if fi.Mode().IsRegular() || fi.IsDir() || fi.Mode()&os.ModeSymlink != 0 {
		return fmt.Errorf("control socket %s: a %s is there, not a socket; remove it or choose another socket path", path, kind(fi))
	}
	c, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		c.Close()
		return fmt.Errorf("control socket %s answers: %w; stop it or choose another socket path", path, ErrRunning)
	}
	if !isRefused(err) {
		return fmt.Errorf("control socket %s exists and cannot be checked (%w); remove it if no master is running", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("control socket %s: remove stale socket: %w", path, err)
	}
	log.Info("removed stale control socket", "path", path)
	return nil
}

func kind(fi os.FileInfo) string {
	switch {
	case fi.IsDir():
		return "directory"
	case fi.Mode()&os.ModeSymlink != 0:
		return "symlink"
	}
	return "regular file"
}
