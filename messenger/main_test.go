package messenger_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/broodhq/brood/agent"
	"github.com/broodhq/brood/app"
	"github.com/broodhq/brood/framework"
	"github.com/broodhq/brood/internal/clustertest"
	"github.com/broodhq/brood/messenger"
)

func TestMain(m *testing.M) {
	clustertest.Main(m, map[string]func() error{"msg": runTestApp})
}

// runTestApp is the cluster the tests drive: every process logs what it
// receives, and workers take orders over HTTP at /do.
func runTestApp() error {
	opts := []framework.Option{
		framework.WithAgent(func(a *agent.Agent) error {
			if _, err := os.Stat(os.Getenv("BROOD_TEST_AGENT_DELAY_FILE")); err == nil {
				time.Sleep(1500 * time.Millisecond) // a slow start: the master holds meanwhile
			}
			listen(a.Messenger(), a.Logger())
			// Sent before the cluster is ready: must arrive once it is.
			for i := range 5 {
				if err := a.Messenger().SendToApp("early", fmt.Sprintf("agent-%d", i)); err != nil {
					return err
				}
			}
			return nil
		}),
		framework.WithApp(func(a *app.App) error {
			a.OnStop(stopSeqSend(a.Logger()))
			listen(a.Messenger(), a.Logger())
			for i := range 5 {
				if err := a.Messenger().SendToAgent("early", fmt.Sprintf("app%d-%d", a.Slot(), i)); err != nil {
					return err
				}
			}
			if err := a.Messenger().SendToApp("early", fmt.Sprintf("app%d-to-apps", a.Slot())); err != nil {
				return err
			}
			// A call from a hook goes out at once: the agent is ready.
			var pong string
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := a.Messenger().CallAgent(ctx, "echo", "from-hook", &pong); err != nil {
				return fmt.Errorf("call the agent from a hook: %w", err)
			}
			a.Logger().Info("hook call answered", "reply", pong)
			return nil
		}),
	}
	if v := os.Getenv("BROOD_TEST_MAX_MESSAGE"); v != "" {
		n, _ := strconv.Atoi(v)
		opts = append(opts, framework.WithMaxMessageSize(n))
	}
	r := chi.NewRouter()
	r.Get("/do", do)
	r.Post("/do", do) // for what must not be retried (op=garbage)
	return framework.Run(r, opts...)
}

// listen registers the same handlers in every process.
func listen(m *messenger.Messenger, log *slog.Logger) {
	for _, action := range []string{"t", "early"} {
		m.On(action, func(msg messenger.Message) {
			var d string
			if err := msg.Decode(&d); err != nil {
				log.Error("decode", "err", err)
			}
			log.Info("got", "action", msg.Action, "data", d, "from", msg.From, "from_pid", msg.PID)
		})
	}
	m.Once("once", func(msg messenger.Message) { log.Info("got once", "data", string(msg.Data)) })
	m.On("boom", func(msg messenger.Message) { panic("boom: handler bug") })
	seq := newSeqState(log)
	m.On("seq", seq.on)
	m.Handle("seqstats", func(ctx context.Context, msg messenger.Message) (any, error) { return seq.stats(), nil })
	m.Handle("echo", func(ctx context.Context, msg messenger.Message) (any, error) {
		var d any
		err := msg.Decode(&d)
		return d, err
	})
	m.Handle("whoami", func(ctx context.Context, msg messenger.Message) (any, error) { return os.Getpid(), nil })
	// Calls its caller back before it answers: in the agent, a handler run
	// on the reader of the channel the callback's reply comes by.
	m.Handle("callback", func(ctx context.Context, msg messenger.Message) (any, error) {
		var pid int
		err := m.Call(ctx, msg.PID, "whoami", nil, &pid)
		return pid, err
	})
	m.Handle("slow", func(ctx context.Context, msg messenger.Message) (any, error) {
		var ms int
		_ = msg.Decode(&ms)
		log.Info("slow call started", "ms", ms)
		select {
		case <-time.After(time.Duration(ms) * time.Millisecond):
			return "done", nil
		case <-ctx.Done():
			log.Info("slow call context ended", "cause", fmt.Sprint(context.Cause(ctx)),
				"caller_gone", errors.Is(context.Cause(ctx), messenger.ErrCallerGone))
			return nil, ctx.Err()
		}
	})
	// The caller's deadline as the handler sees it: ms left, -1 for none.
	m.Handle("deadline", func(ctx context.Context, msg messenger.Message) (any, error) {
		dl, ok := ctx.Deadline()
		if !ok {
			return -1, nil
		}
		return time.Until(dl).Milliseconds(), nil
	})
	// A handler that ignores its context: a stopping process must not wait
	// for it past messenger.OrphanWait once its caller gave up.
	m.Handle("stuck", func(ctx context.Context, msg messenger.Message) (any, error) {
		log.Info("stuck call started")
		time.Sleep(time.Hour)
		return nil, nil
	})
	// Blocks the dispatcher for good, the first time only (a file marks
	// it): a deadlocked agent, for the hang detection.
	m.On("hang", func(msg messenger.Message) {
		f, err := os.OpenFile(os.Getenv("BROOD_TEST_HANG_FILE"), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err != nil {
			return
		}
		f.Close()
		log.Info("hanging")
		select {}
	})
	m.OnMembers(func(agent int, apps []int) { log.Info("members", "agent", agent, "apps", apps) })
	m.Handle("fail", func(ctx context.Context, msg messenger.Message) (any, error) {
		return nil, errors.New("no such thing")
	})
	m.Handle("panic", func(ctx context.Context, msg messenger.Message) (any, error) { panic("call handler bug") })
	m.Handle("big", func(ctx context.Context, msg messenger.Message) (any, error) {
		var n int
		_ = msg.Decode(&n)
		return strings.Repeat("x", n), nil
	})
	// The agent sends what a worker asks it to, to test the agent as sender.
	m.Handle("do-send", func(ctx context.Context, msg messenger.Message) (any, error) {
		var o order
		if err := msg.Decode(&o); err != nil {
			return nil, err
		}
		return nil, o.send(m)
	})
	m.Handle("members", func(ctx context.Context, msg messenger.Message) (any, error) {
		return members{Agent: m.AgentPID(), Apps: m.AppPIDs()}, nil
	})
}

type members struct {
	Agent int   `json:"agent"`
	Apps  []int `json:"apps"`
}

// order is a send that /do or the agent performs.
type order struct {
	Route  string `json:"route"` // all, app, agent, random, pid
	PID    int    `json:"pid"`
	Action string `json:"action"`
	Data   string `json:"data"`
	Size   int    `json:"size"` // data of this many bytes instead
}

func (o order) send(m *messenger.Messenger) error {
	var data any = o.Data
	if o.Size > 0 {
		data = strings.Repeat("y", o.Size)
	}
	switch o.Route {
	case "all":
		return m.Broadcast(o.Action, data)
	case "app":
		return m.SendToApp(o.Action, data)
	case "agent":
		return m.SendToAgent(o.Action, data)
	case "random":
		return m.SendRandom(o.Action, data)
	case "pid":
		return m.SendTo(o.PID, o.Action, data)
	}
	return fmt.Errorf("no route %q", o.Route)
}

// seqState checks that the numbers each sender sends on "seq" arrive in
// order, and (in the agent, when $BROOD_TEST_SEQ_FILE is set) appends each
// to a file that outlives the process.
type seqState struct {
	log  *slog.Logger
	file *os.File

	mu     sync.Mutex
	last   map[int]int
	count  int
	broken int
}

type seqStats struct {
	Count  int `json:"count"`
	Broken int `json:"broken"`
}

func newSeqState(log *slog.Logger) *seqState {
	s := &seqState{log: log, last: map[int]int{}}
	if p := os.Getenv("BROOD_TEST_SEQ_FILE"); p != "" && os.Getenv("BROOD_ROLE") == "agent" {
		s.file, _ = os.OpenFile(p, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	}
	return s
}

func (s *seqState) on(msg messenger.Message) {
	var n int
	_ = msg.Decode(&n)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.file != nil {
		fmt.Fprintf(s.file, "%d %d %d\n", os.Getpid(), n, msg.PID)
	}
	// A new agent may first see the few messages the old one handled but
	// had not acknowledged: the check starts at the first number seen.
	if last, ok := s.last[msg.PID]; ok && n != last+1 {
		s.broken++
		s.log.Error("out of order", "from_pid", msg.PID, "got", n, "after", last)
	}
	s.last[msg.PID] = n
	s.count++
}

func (s *seqState) stats() seqStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return seqStats{Count: s.count, Broken: s.broken}
}

type result struct {
	PID   int             `json:"pid"`
	Reply json.RawMessage `json:"reply,omitempty"`
	Err   string          `json:"err,omitempty"`
	Is    []string        `json:"is,omitempty"` // sentinels the error matches
}

// do runs one order given in the query, in the worker that got the request:
//
//	op=send&route=..&pid=..&action=..&data=..&size=..   send
//	op=agentsend&...                                    have the agent send
//	op=call&pid=..&action=..&data=..&ms=..               Call (pid 0: CallAgent)
//	op=seqsend&route=..&pid=..&n=..&pace=..              send 1..n on "seq"
//	op=garbage                                           corrupt the channels (to the master, to the agent)
func do(w http.ResponseWriter, r *http.Request) {
	a := app.FromContext(r.Context())
	m := a.Messenger()
	q := r.URL.Query()
	pid, _ := strconv.Atoi(q.Get("pid"))
	size, _ := strconv.Atoi(q.Get("size"))
	o := order{Route: q.Get("route"), PID: pid, Action: q.Get("action"), Data: q.Get("data"), Size: size}
	res := result{PID: os.Getpid()}
	var err error
	switch q.Get("op") {
	case "send":
		err = o.send(m)
	case "agentsend":
		ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
		err = m.CallAgent(ctx, "do-send", o, nil)
		cancel()
	case "call":
		ms, _ := strconv.Atoi(q.Get("ms"))
		ctx, cancel := context.WithTimeout(r.Context(), time.Duration(cmpOr(ms, 10000))*time.Millisecond)
		var data any = o.Data
		if d := q.Get("json"); d != "" {
			data = json.RawMessage(d)
		}
		if size > 0 {
			data = strings.Repeat("z", size)
		}
		if pid == 0 {
			err = m.CallAgent(ctx, o.Action, data, &res.Reply)
		} else {
			err = m.Call(ctx, pid, o.Action, data, &res.Reply)
		}
		cancel()
	case "seqsend":
		n, _ := strconv.Atoi(q.Get("n"))
		pace, _ := strconv.Atoi(q.Get("pace")) // sleep 1ms every pace messages
		seqSending.Add(1)
		go func() {
			defer seqSending.Done()
			for i := 1; i <= n; i++ {
				if seqStop.Load() {
					return
				}
				seqLast.Store(int64(i))
				var err error
				if o.Route == "pid" {
					err = m.SendTo(o.PID, "seq", i)
				} else if o.Route == "app" {
					err = m.SendToApp("seq", i)
				} else {
					err = m.SendToAgent("seq", i)
				}
				if err != nil {
					a.Logger().Error("seqsend", "err", err)
				}
				if pace > 0 && i%pace == 0 {
					time.Sleep(time.Millisecond)
				}
			}
			a.Logger().Info("seqsend done", "n", n)
		}()
	case "slowthenecho":
		// A slow call to the agent in flight, then a quick one from the
		// same worker: how long the quick one took, in ms.
		ctx, cancel := context.WithTimeout(r.Context(), 20*time.Second)
		slow := make(chan error, 1)
		go func() { slow <- m.CallAgent(ctx, "slow", 2000, nil) }()
		time.Sleep(100 * time.Millisecond)
		t0 := time.Now()
		var echo string
		if err = m.CallAgent(ctx, "echo", "quick", &echo); err == nil {
			res.Reply, _ = json.Marshal(time.Since(t0).Milliseconds())
			err = <-slow
		}
		cancel()
	case "callloop":
		// CallAgent echo for ms milliseconds, c at a time; every call must
		// end, answered or with ErrTargetGone.
		ms, _ := strconv.Atoi(q.Get("ms"))
		conc, _ := strconv.Atoi(q.Get("c"))
		res.Reply, err = json.Marshal(callLoop(m, time.Duration(ms)*time.Millisecond, max(conc, 1)))
	case "garbage":
		err = writeGarbage()
	default:
		err = fmt.Errorf("no op %q", q.Get("op"))
	}
	if err != nil {
		res.Err = err.Error()
		for name, target := range map[string]error{
			"deadline": context.DeadlineExceeded, "nohandler": messenger.ErrNoHandler,
			"gone": messenger.ErrTargetGone, "toolarge": messenger.ErrTooLarge,
		} {
			if errors.Is(err, target) {
				res.Is = append(res.Is, name)
			}
		}
		var re *messenger.RemoteError
		if errors.As(err, &re) {
			res.Is = append(res.Is, "remote")
			if re.Panic {
				res.Is = append(res.Is, "panic")
			}
		}
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(res)
}

// A seqsend in a worker that is stopping (replaced by a reload) ends at its
// OnStop, which logs the last number sent: what came before must arrive.
var (
	seqStop    atomic.Bool
	seqLast    atomic.Int64
	seqSending sync.WaitGroup
)

func stopSeqSend(log *slog.Logger) func(context.Context) error {
	return func(context.Context) error {
		seqStop.Store(true)
		seqSending.Wait()
		log.Info("seqsend stopped", "last", seqLast.Load())
		return nil
	}
}

func cmpOr(a, b int) int {
	if a != 0 {
		return a
	}
	return b
}

// writeGarbage writes a frame too short to hold a header straight onto the
// channel to the master, as a buggy or hostile child would.
func writeGarbage() error {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return err
	}
	found := false
	for _, e := range ents {
		fd, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		sa, err := syscall.Getsockname(fd)
		if err != nil {
			continue
		}
		if _, unix := sa.(*syscall.SockaddrUnix); !unix {
			continue
		}
		if typ, err := syscall.GetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_TYPE); err != nil || typ != syscall.SOCK_STREAM {
			continue
		}

		// Every one: the channel to the master and the direct one to the
		// agent, which cannot be told apart from here.
		if _, err := syscall.Write(fd, []byte{3, 0, 0, 0, 'b', 'a', 'd'}); err != nil {
			return err
		}
		found = true
	}
	if !found {
		return errors.New("no channel socket found")
	}
	return nil
}

type loopStats struct {
	OK, Gone, Other int
	MaxMS           int64
	Errs            []string
}

func callLoop(m *messenger.Messenger, d time.Duration, conc int) loopStats {
	var mu sync.Mutex
	var st loopStats
	end := time.Now().Add(d)
	var wg sync.WaitGroup
	for g := range conc {
		wg.Go(func() {
			for i := 0; time.Now().Before(end); i++ {
				t0 := time.Now()
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				var got string
				want := fmt.Sprintf("%d-%d", g, i)
				err := m.CallAgent(ctx, "echo", want, &got)
				cancel()
				ms := time.Since(t0).Milliseconds()
				mu.Lock()
				st.MaxMS = max(st.MaxMS, ms)
				switch {
				case err == nil && got == want:
					st.OK++
				case errors.Is(err, messenger.ErrTargetGone):
					st.Gone++
				default:
					st.Other++
					if len(st.Errs) < 5 {
						st.Errs = append(st.Errs, fmt.Sprintf("%v (reply %q)", err, got))
					}
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return st
}
