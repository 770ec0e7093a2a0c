package framework

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

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
	rounds waiters[reopenedMsg]
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

// logControl registers the log file handlers. openChannel calls it before
// the reader starts, so that no reopen request can slip past.
func (ch *channel) logControl(c *config) {
	files := c.logs.files
	ch.ctl.set(ctlReopenLogs, func(f wire.Frame) {
		var msg reopenMsg
		_ = json.Unmarshal(f.Data, &msg)
		reply := reopenedMsg{ID: msg.ID}
		if files != nil {
			if err := files.reopen(); err != nil {
				reply.Error = err.Error()
				ch.log.Error("reopen log files", "err", err)
			}
		}
		ch.send(control(ctlLogsReopened, reply))
	})
	ch.ctl.set(ctlLogsReopened, func(f wire.Frame) {
		var msg reopenedMsg
		if json.Unmarshal(f.Data, &msg) != nil {
			return
		}
		if w := ch.ctl.rounds.get(msg.ID); w != nil {
			select {
			case w <- msg:
			default: // answered twice
			}
		}
	})
}

// errNotReopened is wrapped by reopenEverywhere's error when some process
// did not confirm that it reopened its log files.
var errNotReopened = errors.New("not every process confirmed it reopened the log files")

// reopenEverywhere asks the master to have every process (this one
// included) reopen its log files, and waits for it to report that they all
// did.
func (ch *channel) reopenEverywhere(ctx context.Context) error {
	id, w, remove := ch.ctl.rounds.add(1)
	defer remove()

	if err := ch.conn.SendFrame(control(ctlReopenLogs, reopenMsg{ID: id})); err != nil {
		return fmt.Errorf("ask the master to reopen log files: %w", err)
	}
	// The master gives up on silent processes after reopenTimeout; this
	// bound only matters if the master itself is stuck.
	t := time.NewTimer(reopenTimeout + 5*time.Second)
	defer t.Stop()
	select {
	case msg := <-w:
		if len(msg.Missing) > 0 {
			return fmt.Errorf("%w: %v", errNotReopened, msg.Missing)
		}
		return nil
	case <-t.C:
		return fmt.Errorf("%w: the master did not answer", errNotReopened)
	case <-ch.closed:
		return fmt.Errorf("%w: %w", errNotReopened, ErrMasterGone)
	case <-ctx.Done():
		return fmt.Errorf("%w: %w", errNotReopened, context.Cause(ctx))
	}
}
