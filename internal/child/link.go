package child

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/broodhq/brood/internal/msglink"
	"github.com/broodhq/brood/internal/protocol"
	"github.com/broodhq/brood/internal/wire"
	"github.com/broodhq/brood/messenger"
)

// ErrMasterGone is returned by a role whose master has exited.
var ErrMasterGone = errors.New("master went away")

// Config is what a child's link needs, built once by framework.Run from the
// resolved options and the environment the master set.
type Config struct {
	Env        Env
	Log        *slog.Logger
	MaxMessage int // bytes of one frame's data; 0: wire's default
	// ReopenLogs reopens this process's log files when the master asks; nil
	// when it writes none.
	ReopenLogs func() error
}

// Link is a child's end of the socketpair to its master. Its reader
// goroutine hands control frames to the role's loop.
type Link struct {
	conn    *wire.Conn
	log     *slog.Logger
	control chan wire.Frame
	closed  chan struct{}        // the master's end is gone
	msgr    *messenger.Messenger // this process's messenger: messenger.go
	msgs    msglink.Endpoint     // the framework's side of msgr
	ctl     ctlHandlers          // frames answered by the reader: ctl.go
}

// Open takes over the channel the master passed as protocol.FDChannel and
// starts reading it.
func Open(c Config) (*Link, error) {
	f := os.NewFile(protocol.FDChannel, "brood-channel")
	nc, err := net.FileConn(f)
	f.Close() // FileConn made its own close-on-exec copy; our children must not inherit fd 3
	if err != nil {
		return nil, fmt.Errorf("open channel to master: %w", err)
	}
	l := &Link{
		conn:    wire.NewConnFD(nc, c.MaxMessage), // the master passes direct channels on it
		log:     c.Log,
		control: make(chan wire.Frame, 16),
		closed:  make(chan struct{}),
	}
	l.logControl(c.ReopenLogs)
	l.profileControl()
	l.openMessenger(c.Env.Role)
	go l.readLoop()
	return l, nil
}

// Messenger is this process's messenger, for agent.Config and app.Config.
func (l *Link) Messenger() *messenger.Messenger { return l.msgr }

func (l *Link) readLoop() {
	defer close(l.closed)
	defer l.disconnectMessenger()
	for {
		raw, err := l.conn.Read()
		if err != nil {
			if errors.Is(err, wire.ErrMalformed) {
				l.log.Error("malformed frame from master", "err", err)
			}
			return
		}
		f, _ := wire.Parse(raw)
		if l.toMessenger(f) {
			continue
		}
		if f.Kind == wire.KindControl {
			if fn := l.ctl.get(f.Action); fn != nil {
				fn(f)
				continue
			}
			l.control <- f
		}
	}
}

// Send sends a control frame to the master; a failure is logged, since the
// master's end going away is noticed by the reader.
func (l *Link) Send(f *wire.Frame) {
	if err := l.conn.SendFrame(f); err != nil {
		l.log.Warn("send to master failed", "action", f.Action, "err", err)
	}
}

// Ready tells the master this child serves.
func (l *Link) Ready() { l.Send(protocol.Control(protocol.Ready, nil)) }

// BootFailed tells the master why this child cannot start, so that its
// error names the cause rather than an exit status, and returns err.
func (l *Link) BootFailed(err error) error {
	l.Send(protocol.Control(protocol.BootFailed, protocol.BootFailedMsg{Error: err.Error()}))
	l.conn.Close(time.Second)
	return err
}

// Close flushes what is queued for the master, for at most a second, and
// closes the channel.
func (l *Link) Close() { l.conn.Close(time.Second) }

// Handle answers the control frames of action on the reader goroutine
// (ctl.go says when that is needed). fn must be quick.
func (l *Link) Handle(action string, fn func(wire.Frame)) { l.ctl.set(action, fn) }

// Signals leaves the lifecycle signals to the master: Ctrl-C at a
// terminal signals the whole process group, and one orderly stop run by the
// master is what the user asked for, not N racing ones. SIGTERM sent to a
// child alone still stops that child gracefully (the master replaces it).
func Signals() chan os.Signal {
	signal.Ignore(syscall.SIGINT, syscall.SIGQUIT, syscall.SIGHUP, syscall.SIGTTIN, syscall.SIGTTOU, syscall.SIGUSR1)
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	return term
}

// Stop is how a child is to stop.
type Stop struct {
	Timeout time.Duration
	// HandedOver: another worker takes over this child's sockets
	// (protocol.StopMsg.HandedOver).
	HandedOver bool
}

// WaitStop blocks until this child should stop and says how (within def
// when the child was signalled, or the master's word garbled); onReady runs
// when the master reports the cluster ready.
func (l *Link) WaitStop(def time.Duration, term <-chan os.Signal, onReady func(), failed <-chan error) (Stop, error) {
	for {
		select {
		case f := <-l.control:
			switch f.Action {
			case protocol.Stop:
				var msg protocol.StopMsg
				if err := protocol.Decode(f, &msg); err != nil {
					l.log.Warn("stop with a timeout that does not decode; using the shutdown timeout", "err", err)
					return Stop{Timeout: def}, nil
				}
				return Stop{Timeout: time.Duration(msg.TimeoutMS) * time.Millisecond, HandedOver: msg.HandedOver}, nil
			case protocol.ClusterReady:
				go onReady()
			}
		case <-term:
			return Stop{Timeout: def}, nil
		case <-l.closed:
			return Stop{}, ErrMasterGone
		case err := <-failed:
			return Stop{}, err
		}
	}
}

// StopContext bounds a role's stop by its timeout, with a cause that says
// which option sets it.
func StopContext(timeout time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeoutCause(context.Background(), timeout,
		fmt.Errorf("shutdown timeout of %s reached (WithShutdownTimeout, $BROOD_SHUTDOWN_TIMEOUT)", timeout))
}
