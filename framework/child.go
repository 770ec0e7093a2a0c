package framework

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/broodhq/brood/internal/msglink"
	"github.com/broodhq/brood/internal/proc"
	"github.com/broodhq/brood/internal/wire"
	"github.com/broodhq/brood/messenger"
)

// ErrNoMaster is returned by Run in a process that has BROOD_ROLE set but
// was not started by a brood master.
var ErrNoMaster = errors.New("not started by a brood master")

// ErrMasterGone is returned by Run in a child whose master has exited.
var ErrMasterGone = errors.New("master went away")

// channel is a child's end of the socketpair to its master. Its reader
// goroutine hands control frames to the role's loop.
type channel struct {
	conn    *wire.Conn
	log     *slog.Logger
	control chan wire.Frame
	closed  chan struct{}        // the master's end is gone
	msgr    *messenger.Messenger // this process's messenger: messages.go
	msgs    msglink.Endpoint     // the framework's side of msgr
	ctl     ctlHandlers          // frames answered by the reader: childctl.go

	handedOver bool // the stop waitStop returned hands this child's sockets on
}

// checkMaster refuses to run a child role in a process that a master did
// not start: someone copied BROOD_ROLE into a shell, or a master died
// between starting us and our first instruction.
func checkMaster(role string) error {
	want := os.Getenv(envMaster)
	if want == "" || want != strconv.Itoa(os.Getppid()) || !proc.IsSocket(fdChannel, proc.StreamSocket) {
		return fmt.Errorf("%w: BROOD_ROLE=%s is set, but this process has no brood master behind it (the master sets BROOD_ROLE for the processes it starts): unset BROOD_ROLE to start a master", ErrNoMaster, role)
	}
	return nil
}

func openChannel(c *config, log *slog.Logger) (*channel, error) {
	f := os.NewFile(fdChannel, "brood-channel")
	nc, err := net.FileConn(f)
	f.Close() // FileConn made its own close-on-exec copy; our children must not inherit fd 3
	if err != nil {
		return nil, fmt.Errorf("open channel to master: %w", err)
	}
	ch := &channel{
		conn:    wire.NewConn(nc, c.maxMessage),
		log:     log,
		control: make(chan wire.Frame, 16),
		closed:  make(chan struct{}),
	}
	ch.logControl(c)
	ch.openMessenger()
	go ch.readLoop()
	return ch, nil
}

func (ch *channel) readLoop() {
	defer close(ch.closed)
	defer ch.disconnectMessenger()
	for {
		raw, err := ch.conn.Read()
		if err != nil {
			if errors.Is(err, wire.ErrMalformed) {
				ch.log.Error("malformed frame from master", "err", err)
			}
			return
		}
		f, _ := wire.Parse(raw)
		if ch.toMessenger(f) {
			continue
		}
		if f.Kind == wire.KindControl {
			if fn := ch.ctl.get(f.Action); fn != nil {
				fn(f)
				continue
			}
			ch.control <- f
			continue
		}
	}
}

func (ch *channel) send(f *wire.Frame) {
	if err := ch.conn.SendFrame(f); err != nil {
		ch.log.Warn("send to master failed", "action", f.Action, "err", err)
	}
}

// bootFailed tells the master why this child cannot start, so that its error
// names the cause rather than an exit status.
func (ch *channel) bootFailed(err error) error {
	ch.send(control(ctlBootFailed, bootFailedMsg{Error: err.Error()}))
	ch.conn.Close(time.Second)
	return err
}

// childSignals leaves the lifecycle signals to the master: Ctrl-C at a
// terminal signals the whole process group, and one orderly stop run by the
// master is what the user asked for, not N racing ones. SIGTERM sent to a
// child alone still stops that child gracefully (the master replaces it).
func childSignals() chan os.Signal {
	signal.Ignore(syscall.SIGINT, syscall.SIGQUIT, syscall.SIGHUP, syscall.SIGTTIN, syscall.SIGTTOU, syscall.SIGUSR1)
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	return term
}

// waitStop blocks until this child should stop and says how long it may
// take; onReady runs when the master reports the cluster ready.
func (ch *channel) waitStop(c *config, term <-chan os.Signal, onReady func(), failed <-chan error) (time.Duration, error) {
	for {
		select {
		case f := <-ch.control:
			switch f.Action {
			case ctlStop:
				var msg stopMsg
				if err := json.Unmarshal(f.Data, &msg); err != nil {
					return c.shutdownTimeout, nil
				}
				ch.handedOver = msg.HandedOver
				return time.Duration(msg.TimeoutMS) * time.Millisecond, nil
			case ctlClusterReady:
				go onReady()
			}
		case <-term:
			return c.shutdownTimeout, nil
		case <-ch.closed:
			return 0, ErrMasterGone
		case err := <-failed:
			return 0, err
		}
	}
}

func stopContext(timeout time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeoutCause(context.Background(), timeout,
		fmt.Errorf("shutdown timeout of %s reached (WithShutdownTimeout, $BROOD_SHUTDOWN_TIMEOUT)", timeout))
}
