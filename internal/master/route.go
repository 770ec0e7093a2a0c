package master

import (
	"encoding/json"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"sync/atomic"

	"github.com/broodhq/brood/internal/losslog"
	"github.com/broodhq/brood/internal/msglink"
	"github.com/broodhq/brood/internal/wire"
)

// routeTable is an immutable snapshot of the children that can receive
// messages; the master's loop publishes a new one whenever a child becomes
// ready or exits, and the readers route without taking a lock.
type routeTable struct {
	agent   *wire.Conn
	workers []*wire.Conn
	byPID   map[int]*wire.Conn // the agent included
}

// router moves frames between children. It runs on each child's reader
// goroutine and reads frame headers only: the data is never decoded.
// Whatever is for the agent goes through agentLink, which keeps it when the
// agent dies (agentlink.go).
type router struct {
	log   *slog.Logger
	table atomic.Pointer[routeTable]
	agent agentLink
	// every live child by pid, ready or not: replies go here, because a
	// child still running its hooks may be waiting for one
	live atomic.Pointer[map[int]*wire.Conn]

	members msglink.Members // last announced; owned by the master's loop
	lost    losslog.Log     // first loss at once, the rest a second later, by reason
}

func (r *router) route(raw []byte) {
	t := r.table.Load()
	if t == nil {
		t = &routeTable{}
	}
	switch wire.RouteOf(raw) {
	case wire.ToAgent:
		r.toAgent(raw)
	case wire.ToApp:
		r.toWorkers(t, raw)
	case wire.ToAll:
		r.toAgent(raw)
		r.toWorkers(t, raw)
	case wire.ToRandom:
		if n := len(t.workers); n > 0 {
			r.send(t.workers[rand.IntN(n)], raw)
		} else {
			r.undeliverable(raw, "no worker is ready")
		}
	case wire.ToPID:
		pid := wire.ToPIDOf(raw)
		if k := wire.KindOf(raw); k == wire.KindReply || k == wire.KindReplyError {
			if wire.FromOf(raw) == wire.RoleAgent {
				r.agent.replied(wire.FromPIDOf(raw), pid, wire.CallIDOf(raw))
			}
			r.reply(pid, raw)
			return
		}
		switch c := t.byPID[pid]; {
		case c == nil:
			r.undeliverable(raw, "no process "+strconv.Itoa(pid)+" in the cluster")
		case c == t.agent:
			r.toAgent(raw)
		default:
			r.send(c, raw)
		}
	case wire.ToMaster:
		switch wire.KindOf(raw) {
		case wire.KindAck:
			r.agent.ack(wire.FromPIDOf(raw), wire.CallIDOf(raw))
			return
		case wire.KindReplyError:
			// A hung agent hands back a call it did not start (relay
			// mode): ToPID names the caller.
			if wire.FromOf(raw) == wire.RoleAgent {
				k := callKey{wire.ToPIDOf(raw), wire.CallIDOf(raw)}
				if why := r.agent.handOver(wire.FromPIDOf(raw), k); why != "" {
					r.failCallTo(k, why)
				}
				return
			}
		}
		r.undeliverable(raw, "the master answers no calls")
	}
}

func (r *router) toWorkers(t *routeTable, raw []byte) {
	for _, w := range t.workers {
		r.send(w, raw)
	}
}

func (r *router) toAgent(raw []byte) {
	if why := r.agent.send(raw); why != "" {
		r.undeliverable(raw, why)
	}
}

func (r *router) send(c *wire.Conn, raw []byte) {
	if err := sendOn(c, raw); err != nil {
		r.undeliverable(raw, err.Error())
	}
}

// sendOn writes a call at once if it can, because its caller waits, and
// queues messages, which the writer batches.
func sendOn(c *wire.Conn, raw []byte) error {
	if wire.KindOf(raw) == wire.KindMessage {
		return c.Send(raw)
	}
	return c.SendNow(raw)
}

// undeliverable drops a frame. A call gets an answer at once, so that its
// caller does not wait for its deadline; a message is counted and logged
// (the first of a burst at once, the rest summed by reason a second later),
// so that a child that stopped reading cannot flood the log.
func (r *router) undeliverable(raw []byte, why string) {
	if wire.KindOf(raw) == wire.KindCall {
		r.failCall(raw, why)
		return
	}
	r.lost.Add(r.log, why, actionOf(raw))
}

// reply passes a reply to its caller directly, even to the agent: a
// caller whose call failed or who died needs no reply kept for it.
func (r *router) reply(pid int, raw []byte) {
	if live := r.live.Load(); live != nil {
		if c := (*live)[pid]; c != nil {
			if err := c.SendNow(raw); err != nil {
				r.log.Debug("reply not delivered", "to_pid", pid, "err", err)
			}
		}
	}
}

// failCall answers a call with a reply-error from the master.
func (r *router) failCall(raw []byte, why string) {
	r.failCallTo(callKey{wire.FromPIDOf(raw), wire.CallIDOf(raw)}, why)
}

func (r *router) failCallTo(k callKey, why string) {
	data, _ := json.Marshal(msglink.ReplyError{Code: msglink.CodeGone, Error: why})
	f := wire.Frame{Kind: wire.KindReplyError, Route: wire.ToPID, From: wire.RoleMaster, ToPID: k.caller, CallID: k.id, Data: data}
	r.reply(k.caller, f.Encode())
}

func actionOf(raw []byte) string {
	if f, err := wire.Parse(raw); err == nil {
		return f.Action
	}
	return ""
}
