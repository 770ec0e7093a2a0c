package framework

import (
	"log/slog"
	"math/rand/v2"
	"sync/atomic"

	"github.com/broodhq/brood/internal/wire"
)

// routeTable is an immutable snapshot of the children that can receive
// messages; the master's loop publishes a new one whenever a child becomes
// ready or exits, and the readers route without taking a lock.
type routeTable struct {
	agent   *wire.Conn
	workers []*wire.Conn
	byPID   map[int]*wire.Conn
}

type router struct {
	log   *slog.Logger
	table atomic.Pointer[routeTable]
}

func (r *router) route(raw []byte) {
	t := r.table.Load()
	if t == nil {
		return
	}
	switch wire.RouteOf(raw) {
	case wire.ToAgent:
		r.send(t.agent, raw)
	case wire.ToApp:
		for _, w := range t.workers {
			r.send(w, raw)
		}
	case wire.ToAll:
		r.send(t.agent, raw)
		for _, w := range t.workers {
			r.send(w, raw)
		}
	case wire.ToRandom:
		if n := len(t.workers); n > 0 {
			r.send(t.workers[rand.IntN(n)], raw)
		}
	case wire.ToPID:
		r.send(t.byPID[wire.ToPIDOf(raw)], raw)
	}
}

func (r *router) send(c *wire.Conn, raw []byte) {
	if c == nil {
		return
	}
	if err := c.Send(raw); err != nil {
		r.log.Warn("message not delivered", "err", err)
	}
}
