package child

import (
	"context"
	"time"

	"github.com/broodhq/brood/internal/msglink"
	"github.com/broodhq/brood/internal/protocol"
	"github.com/broodhq/brood/internal/wire"
	"github.com/broodhq/brood/messenger"
)

// openMessenger makes this child's Messenger, before the reader starts so
// that no frame arrives without one.
func (l *Link) openMessenger(role string) {
	r := wire.RoleApp
	if role == "agent" {
		r = wire.RoleAgent
	}
	link := &msglink.Link{Conn: l.conn, Role: r}
	l.msgr = messenger.New(messenger.Config{Logger: l.log, Link: link})
	l.msgs = link.Endpoint
}

// toMessenger gives the messenger what is its own, from the reader: every
// frame that is not control, and the membership. It reports whether it
// took f; cluster-ready it only looks at, because the role's loop needs it
// too.
func (l *Link) toMessenger(f wire.Frame) bool {
	switch {
	case f.Kind != wire.KindControl:
		l.msgs.Deliver(f)
		return true
	case f.Action == msglink.CtlMembers:
		var mem msglink.Members
		if err := protocol.Decode(f, &mem); err != nil {
			l.log.Error("bad membership from the master", "err", err)
		} else {
			l.msgs.Members(mem)
		}
		return true
	case f.Action == msglink.CtlDirect:
		l.takeDirect(f)
		return true
	case f.Action == msglink.CtlHung:
		l.msgs.HandOver()
		return true
	case f.Action == protocol.ClusterReady:
		l.msgs.ClusterReady()
	}
	return false
}

// takeDirect hands the messenger the direct channel that came with f: its
// descriptor arrived with the frame's first byte, so it is there now.
func (l *Link) takeDirect(f wire.Frame) {
	fd := l.conn.TakeFD()
	var d msglink.Direct
	if err := protocol.Decode(f, &d); err != nil || fd == nil {
		if fd != nil {
			fd.Close()
		}
		l.log.Error("direct channel from the master unusable", "err", err, "descriptor", fd != nil)
		return
	}
	conn, err := wire.FileConn(fd, l.conn.MaxFrame())
	if err != nil {
		l.log.Error("direct channel from the master unusable", "peer_pid", d.Peer, "err", err)
		return
	}
	l.msgs.Peer(d.Peer, conn)
}

// LeaveMessaging, at the agent's stop, asks the master to send nothing more
// and waits, until ctx ends or the master is gone, for its "drained": every
// frame for this agent came before it.
func (l *Link) LeaveMessaging(ctx context.Context) {
	l.Send(protocol.Control(protocol.Draining, nil))
	for {
		select {
		case f := <-l.control:
			if f.Action == protocol.Drained {
				return
			}
		case <-l.closed:
			return
		case <-ctx.Done():
			l.log.Debug("the master did not confirm the drain before the stop timeout", "err", context.Cause(ctx))
			return
		}
	}
}

// DrainMessenger, at the agent's stop, answers every call and handles every
// message the agent was sent (LeaveMessaging made that a closed set),
// before its OnStop hooks close what the handlers use.
func (l *Link) DrainMessenger(ctx context.Context) {
	if err := l.msgs.Drain(ctx); err != nil {
		l.log.Warn("message handlers still running at stop", "err", err)
	}
}

// CloseMessenger, at stop, fails the calls still waiting and waits for
// running handlers until ctx ends.
func (l *Link) CloseMessenger(ctx context.Context) {
	if err := l.msgs.Close(ctx); err != nil {
		l.log.Warn("message handlers still running at stop", "err", err)
	}
}

// disconnectMessenger, when the reader ends, fails the calls still waiting:
// no reply can come any more.
func (l *Link) disconnectMessenger() {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_ = l.msgs.Close(ctx)
}

// Heartbeat reports the messenger's work to the master every interval
// until ctx ends: the agent's hang detection (the master's housekeeping).
func (l *Link) Heartbeat(ctx context.Context, every time.Duration) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		inFlight, progress := l.msgs.Work()
		l.Send(protocol.Control(protocol.Heartbeat, protocol.HeartbeatMsg{InFlight: inFlight, Progress: progress}))
	}
}
