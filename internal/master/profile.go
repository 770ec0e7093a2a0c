package master

import (
	"context"
	"errors"
	"fmt"
	"time"

	ctlsock "github.com/broodhq/brood/internal/control"
	"github.com/broodhq/brood/internal/profile"
	"github.com/broodhq/brood/internal/protocol"
	"github.com/broodhq/brood/internal/wire"
)

// profiles are the profiles asked of children for broodctl pprof, waiting
// for their answer; safe to use off the loop.
type profiles struct {
	waiting protocol.Waiters[protocol.ProfileMsg]
}

// controlProfile answers pprof off the loop: the master takes its own
// profile, and asks a child over its channel for one of its own.
func (m *master) controlProfile(ctx context.Context, req ctlsock.Request) ctlsock.Response {
	d := time.Duration(req.Seconds) * time.Second
	if req.Target == ctlsock.TargetMaster {
		data, err := profile.Collect(ctx, req.Profile, d)
		if err != nil {
			return ctlsock.Fail("pprof master: %v", err)
		}
		return ctlsock.Response{OK: true, Data: data}
	}
	var conn *wire.Conn
	var err error
	if !m.call(func() { conn, err = m.profileTarget(req) }) {
		return ctlsock.Fail("the master is stopping")
	}
	if err != nil {
		return ctlsock.Fail("pprof: %v", err)
	}
	id, reply, remove := m.profiles.waiting.Add(1)
	defer remove()
	if d <= 0 {
		d = profile.DefaultDuration
	}
	msg := protocol.ProfileMsg{ID: id, Kind: req.Profile, DurationMS: d.Milliseconds()}
	if err := conn.SendFrame(protocol.Control(protocol.Profile, msg)); err != nil {
		return ctlsock.Fail("pprof: ask the %s: %v", targetName(req), err)
	}
	select {
	case r := <-reply:
		if r.Error != "" {
			return ctlsock.Fail("pprof %s: %s", targetName(req), r.Error)
		}
		return ctlsock.Response{OK: true, Data: r.Data}
	case <-ctx.Done():
		return ctlsock.Fail("pprof: the %s did not answer in time: %v", targetName(req), context.Cause(ctx))
	case <-m.quit:
		return ctlsock.Fail("the master is stopping")
	}
}

func targetName(req ctlsock.Request) string {
	if req.Target == ctlsock.TargetWorker {
		return fmt.Sprintf("worker %d", req.Slot)
	}
	return req.Target
}

// profileTarget is the channel to the ready process req names; on the loop.
func (m *master) profileTarget(req ctlsock.Request) (*wire.Conn, error) {
	slot := agentSlot
	if req.Target == ctlsock.TargetWorker {
		slot = req.Slot
	}
	st := m.slots[slot]
	switch {
	case st == nil && slot == agentSlot:
		return nil, errors.New("this cluster has no agent")
	case st == nil || !st.state.serving():
		return nil, fmt.Errorf("there is no worker %d (broodctl status lists the slots)", slot)
	case st.cur == nil || st.cur.state != childReady || st.cur.conn == nil:
		return nil, fmt.Errorf("the %s is not running now (it is %s); try again shortly", targetName(req), st.state)
	}
	return st.cur.conn, nil
}

// onProfile hands a child's profile to the request waiting for it; on the
// loop.
func (m *master) onProfile(ch *child, f wire.Frame) {
	var msg protocol.ProfileMsg
	if !m.decode(ch, f, &msg) {
		return
	}
	if reply := m.profiles.waiting.Get(msg.ID); reply != nil {
		select {
		case reply <- msg:
		default: // answered twice
		}
	}
}
