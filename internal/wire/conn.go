package wire

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// DefaultMaxFrame bounds one frame; a larger one is refused at the sender
// and treated as malformed at the receiver.
const DefaultMaxFrame = 16 << 20

// ErrClosed is returned by Send after Close or after the peer went away.
var ErrClosed = errors.New("channel closed")

// ErrTooLarge is returned by Send for a frame over the size limit.
var ErrTooLarge = errors.New("message too large")

// ErrBacklog is returned by Send when the peer has not read what it was sent
// and the queue holds more than its bound: better an error than a master that
// grows without limit because one child stopped reading.
var ErrBacklog = errors.New("peer is not reading: send queue full")

// Conn is one end of a framed channel. One goroutine may Read; any number may
// Send. Sends are queued and written by the Conn's own writer goroutine, which
// batches everything queued into as few write calls as it can.
type Conn struct {
	c        net.Conn
	r        *bufio.Reader
	maxFrame int
	maxQueue int

	mu     sync.Mutex
	queue  [][]byte
	queued int
	closed bool
	err    error // why the writer stopped
	wake   chan struct{}
	done   chan struct{}
}

// NewConn starts a Conn over c. maxFrame bounds one frame (0: DefaultMaxFrame);
// the send queue holds at most QueueLimit(maxFrame) bytes.
func NewConn(c net.Conn, maxFrame int) *Conn {
	if maxFrame <= 0 {
		maxFrame = DefaultMaxFrame
	}
	w := &Conn{
		c:        c,
		r:        bufio.NewReaderSize(c, 64<<10),
		maxFrame: maxFrame,
		maxQueue: QueueLimit(maxFrame),
		wake:     make(chan struct{}, 1),
		done:     make(chan struct{}),
	}
	go w.writeLoop()
	return w
}

// QueueLimit is how many bytes a Conn with this frame limit queues before
// Send fails with ErrBacklog: 4×maxFrame or 64 MiB, whichever is more. Whoever
// buffers frames for a Conn (the master's hold for a restarting agent) sizes
// its buffer from it so that the buffer always fits the queue.
func QueueLimit(maxFrame int) int {
	if maxFrame <= 0 {
		maxFrame = DefaultMaxFrame
	}
	return max(4*maxFrame, 64<<20)
}

// MaxFrame is the largest frame this Conn sends or accepts.
func (w *Conn) MaxFrame() int { return w.maxFrame }

// Send queues a raw frame. It never blocks on the peer.
func (w *Conn) Send(raw []byte) error {
	if len(raw) > w.maxFrame+HeaderLen {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(raw)-HeaderLen, w.maxFrame)
	}
	w.mu.Lock()
	if w.closed {
		err := w.err
		w.mu.Unlock()
		if err != nil {
			return fmt.Errorf("%w: %w", ErrClosed, err)
		}
		return ErrClosed
	}
	if w.queued+len(raw) > w.maxQueue {
		w.mu.Unlock()
		return fmt.Errorf("%w (%d bytes queued)", ErrBacklog, w.queued)
	}
	w.queue = append(w.queue, raw)
	w.queued += len(raw)
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
	return nil
}

// SendFrame encodes and queues f.
func (w *Conn) SendFrame(f *Frame) error {
	if len(f.Action) > MaxAction {
		return fmt.Errorf("action %.40q...: %w: action names are limited to %d bytes", f.Action, ErrTooLarge, MaxAction)
	}
	if len(f.Data) > w.maxFrame {
		return fmt.Errorf("action %q: %w: %d bytes, limit %d", f.Action, ErrTooLarge, len(f.Data), w.maxFrame)
	}
	return w.Send(f.Encode())
}

func (w *Conn) writeLoop() {
	defer close(w.done)
	bw := bufio.NewWriterSize(w.c, 64<<10)
	var batch [][]byte
	for {
		w.mu.Lock()
		batch, w.queue = w.queue, batch[:0]
		w.queued = 0
		closed := w.closed
		w.mu.Unlock()
		for i, raw := range batch {
			if _, err := bw.Write(raw); err != nil {
				w.fail(err)
				return
			}
			batch[i] = nil
		}
		if len(batch) > 0 {
			if err := bw.Flush(); err != nil {
				w.fail(err)
				return
			}
			continue // more may have arrived while we wrote
		}
		if closed {
			return
		}
		<-w.wake
	}
}

func (w *Conn) fail(err error) {
	w.mu.Lock()
	w.closed = true
	if w.err == nil {
		w.err = err
	}
	w.queue, w.queued = nil, 0
	w.mu.Unlock()
}

// Read returns the next raw frame. Its header has been checked, so the
// accessors and Parse may be used on it.
func (w *Conn) Read() ([]byte, error) {
	var lenb [4]byte
	if _, err := io.ReadFull(w.r, lenb[:]); err != nil {
		return nil, err
	}
	n := int(binary.LittleEndian.Uint32(lenb[:]))
	if n < HeaderLen-4 || n > w.maxFrame+MaxAction+HeaderLen {
		return nil, fmt.Errorf("%w: length %d outside [%d, %d]", ErrMalformed, n, HeaderLen-4, w.maxFrame+MaxAction+HeaderLen)
	}
	raw := make([]byte, 4+n)
	copy(raw, lenb[:])
	if _, err := io.ReadFull(w.r, raw[4:]); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	if _, err := Parse(raw); err != nil {
		return nil, err
	}
	return raw, nil
}

// Close flushes what is queued (waiting at most timeout) and closes the
// channel. It is safe to call more than once.
func (w *Conn) Close(timeout time.Duration) error {
	w.mu.Lock()
	already := w.closed
	w.closed = true
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
	if !already {
		select {
		case <-w.done:
		case <-time.After(timeout):
		}
	}
	err := w.c.Close()
	<-w.done
	if already || errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

// Done is closed when the writer has stopped (after Close, or a write error).
func (w *Conn) Done() <-chan struct{} { return w.done }
