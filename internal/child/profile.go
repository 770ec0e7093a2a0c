package child

import (
	"context"
	"time"

	"github.com/broodhq/brood/internal/profile"
	"github.com/broodhq/brood/internal/protocol"
	"github.com/broodhq/brood/internal/wire"
)

// profileControl registers the answer to the master's requests for a
// profile of this process (broodctl pprof). Open calls it before the reader
// starts.
func (l *Link) profileControl() {
	l.ctl.set(protocol.Profile, func(f wire.Frame) {
		var msg protocol.ProfileMsg
		if err := protocol.Decode(f, &msg); err != nil {
			l.log.Warn("profile request from the master", "err", err)
			return
		}
		// A CPU profile or a trace lasts seconds: not on the reader, which
		// must go on reading. The goroutine ends with the profile, or
		// sooner when the master goes away.
		go l.sendProfile(msg)
	})
}

func (l *Link) sendProfile(msg protocol.ProfileMsg) {
	d := time.Duration(msg.DurationMS) * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { // ends when this function returns, at the latest
		select {
		case <-l.closed:
			cancel()
		case <-ctx.Done():
		}
	}()
	reply := protocol.ProfileMsg{ID: msg.ID}
	data, err := profile.Collect(ctx, msg.Kind, d)
	if err != nil {
		reply.Error = err.Error()
	}
	reply.Data = data
	if err := l.conn.SendFrame(protocol.Control(protocol.Profile, reply)); err != nil {
		l.log.Warn("send the profile to the master", "kind", msg.Kind, "bytes", len(data), "err", err)
		reply.Data, reply.Error = nil, "send the profile: "+err.Error()+" (a larger WithMaxMessageSize lets larger profiles through)"
		l.Send(protocol.Control(protocol.Profile, reply))
	}
}
