package child

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"time"

	"github.com/broodhq/brood/internal/protocol"
	"github.com/broodhq/brood/internal/wire"
)

// ctlHandlers are the control frames a child answers from its reader
// goroutine instead of handing them to the role's loop: reopening log files
// must work while the child boots and while it stops, when that loop is not
// listening. Handlers must be quick; they run before the next frame is read.
type ctlHandlers struct {
	mu sync.Mutex
	m  map[string]func(wire.Frame)

	// rotations waiting for the master to report that every process
	// reopened its log files (the agent only)
	rounds protocol.Waiters[protocol.ReopenedMsg]
}

func (h *ctlHandlers) set(action string, fn func(wire.Frame)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.m == nil {
		h.m = map[string]func(wire.Frame){}
	}
	h.m[action] = fn
}

func (h *ctlHandlers) get(action string) func(wire.Frame) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.m[action]
}

// logControl registers the log file handlers. Open calls it before the
// reader starts, so that no reopen request can slip past.
func (l *Link) logControl(reopen func() error) {
	l.ctl.set(protocol.ReopenLogs, func(f wire.Frame) {
		var msg protocol.ReopenMsg
		if err := protocol.Decode(f, &msg); err != nil {
			l.log.Warn("reopen-logs from the master", "err", err)
			return
		}
		reply := protocol.ReopenedMsg{ID: msg.ID}
		if reopen != nil {
			if err := reopen(); err != nil {
				reply.Error = err.Error()
				l.log.Error("reopen log files", "err", err)
			}
		}
		l.Send(protocol.Control(protocol.LogsReopened, reply))
	})
	// The master's word on this process's share of the CPUs after a scale
	// (it sends it only when it set GOMAXPROCS itself).
	l.ctl.set(protocol.Procs, func(f wire.Frame) {
		var msg protocol.ProcsMsg
		if err := protocol.Decode(f, &msg); err != nil || msg.N < 1 {
			l.log.Warn("procs from the master", "err", err, "n", msg.N)
			return
		}
		if prev := runtime.GOMAXPROCS(msg.N); prev != msg.N {
			l.log.Debug("GOMAXPROCS follows the worker count", "from", prev, "to", msg.N)
		}
	})
	l.ctl.set(protocol.LogsReopened, func(f wire.Frame) {
		var msg protocol.ReopenedMsg
		if err := protocol.Decode(f, &msg); err != nil {
			l.log.Warn("logs-reopened from the master", "err", err)
			return
		}
		if w := l.ctl.rounds.Get(msg.ID); w != nil {
			select {
			case w <- msg:
			default: // answered twice
			}
		}
	})
}

// ErrNotReopened is wrapped by ReopenEverywhere's error when some process
// did not confirm that it reopened its log files.
var ErrNotReopened = errors.New("not every process confirmed it reopened the log files")

// ReopenEverywhere asks the master to have every process (this one
// included) reopen its log files, and waits for it to report that they all
// did.
func (l *Link) ReopenEverywhere(ctx context.Context) error {
	id, w, remove := l.ctl.rounds.Add(1)
	defer remove()

	if err := l.conn.SendFrame(protocol.Control(protocol.ReopenLogs, protocol.ReopenMsg{ID: id})); err != nil {
		return fmt.Errorf("ask the master to reopen log files: %w", err)
	}
	// The master gives up on silent processes after ReopenTimeout; this
	// bound only matters if the master itself is stuck.
	t := time.NewTimer(protocol.ReopenTimeout + 5*time.Second)
	defer t.Stop()
	select {
	case msg := <-w:
		if len(msg.Missing) > 0 {
			return fmt.Errorf("%w: %v", ErrNotReopened, msg.Missing)
		}
		return nil
	case <-t.C:
		return fmt.Errorf("%w: the master did not answer", ErrNotReopened)
	case <-l.closed:
		return fmt.Errorf("%w: %w", ErrNotReopened, ErrMasterGone)
	case <-ctx.Done():
		return fmt.Errorf("%w: %w", ErrNotReopened, context.Cause(ctx))
	}
}
