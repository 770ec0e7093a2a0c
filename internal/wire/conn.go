package wire

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"sync"
	"syscall"
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

	rc syscall.RawConn // for SendNow's direct writes; nil: none

	mu      sync.Mutex
	queue   []chunk
	queued  int
	writing bool // the writer goroutine is writing a batch
	direct  bool // a SendNow or Uncork is writing
	corked  bool // nothing is written until Uncork (Cork)
	closed  bool
	err     error // why the writer stopped
	wake    chan struct{}
	done    chan struct{}

	joinBuf []byte // takeJoined's buffer, reused; under mu when not in use

	fdMu sync.Mutex
	fds  []*os.File // descriptors received with frames, oldest first (NewConnFD)
}

// chunk is what the writer writes: bytes, and a descriptor sent with their
// first byte (SendFD).
type chunk struct {
	b  []byte
	fd *os.File
}

// NewConn starts a Conn over c. maxFrame bounds one frame (0: DefaultMaxFrame);
// the send queue holds at most QueueLimit(maxFrame) bytes.
func NewConn(c net.Conn, maxFrame int) *Conn { return newConn(c, maxFrame, false) }

// NewConnFD is NewConn for a channel that also receives descriptors
// (SendFD on the other end): each is kept, in the order received, for
// TakeFD.
func NewConnFD(c net.Conn, maxFrame int) *Conn { return newConn(c, maxFrame, true) }

func newConn(c net.Conn, maxFrame int, fds bool) *Conn {
	if maxFrame <= 0 {
		maxFrame = DefaultMaxFrame
	}
	rc := rawConn(c)
	w := &Conn{
		c:        c,
		rc:       rc,
		maxFrame: maxFrame,
		maxQueue: QueueLimit(maxFrame),
		wake:     make(chan struct{}, 1),
		done:     make(chan struct{}),
	}
	var r io.Reader = reader(c, rc)
	if fds && rc != nil {
		r = fdReader{rc: rc, conn: w}
	}
	w.r = bufio.NewReaderSize(r, 64<<10)
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
	if len(raw) > w.maxFrame+HeaderLen+8 {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(raw)-HeaderLen, w.maxFrame)
	}
	w.mu.Lock()
	if err := w.refuse(len(raw)); err != nil {
		w.mu.Unlock()
		return err
	}
	w.enqueue(raw)
	w.mu.Unlock()
	w.wakeWriter()
	return nil
}

// SendNow is Send for a frame someone is waiting for (a call, a reply).
// When nothing is queued and nothing is being written, it writes the frame
// from the calling goroutine with one non-blocking write, sparing the
// handoff to the writer goroutine, which on a request/reply path costs more
// than the write; what the socket does not take at once is queued. It never
// blocks on the peer either. Messages in bulk should use Send, whose writer
// batches them.
func (w *Conn) SendNow(raw []byte) error {
	if len(raw) > w.maxFrame+HeaderLen+8 {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(raw)-HeaderLen, w.maxFrame)
	}
	w.mu.Lock()
	if err := w.refuse(len(raw)); err != nil {
		w.mu.Unlock()
		return err
	}
	if w.corked || w.direct {
		// Uncork, or the SendNow writing now (writeDirect), writes it,
		// in one write with whatever else joins it.
		w.enqueue(raw)
		w.mu.Unlock()
		return nil
	}
	if w.rc == nil || w.writing || len(w.queue) > 0 {
		w.enqueue(raw) // order: after what is queued or being written
		w.mu.Unlock()
		w.wakeWriter()
		return nil
	}
	w.direct = true
	w.mu.Unlock()
	return w.writeDirect(raw)
}

// Cork holds what is sent (SendNow and Send alike) until Uncork: a reader
// that has more frames buffered (Buffered) corks while it answers them, so
// that the replies go out together, in one write, when it uncorks, rather
// than in a write (and a wake-up of the peer) each. Whoever corks must
// uncork soon: nothing goes out meanwhile but at Close.
func (w *Conn) Cork() {
	w.mu.Lock()
	w.corked = true
	w.mu.Unlock()
}

// Uncork ends Cork and writes what is queued from the calling goroutine, as
// SendNow writes one frame; what the socket does not take goes to the
// writer goroutine.
func (w *Conn) Uncork() {
	w.mu.Lock()
	if !w.corked {
		w.mu.Unlock()
		return
	}
	w.corked = false
	if len(w.queue) == 0 || w.closed {
		w.mu.Unlock()
		return
	}
	if w.rc == nil || w.writing || w.direct {
		w.mu.Unlock()
		w.wakeWriter()
		return
	}
	if hasFD(w.queue) { // a descriptor: the writer's to send
		w.mu.Unlock()
		w.wakeWriter()
		return
	}
	b := w.takeJoined()
	w.direct = true
	w.mu.Unlock()
	// writeDirect copies what the socket does not take, so b is free
	// again after it.
	_ = w.writeDirect(b)
	w.putJoined(b)
}

// takeJoined empties the queue into one buffer, joinBuf reused, which is
// the caller's until putJoined. The caller holds mu.
func (w *Conn) takeJoined() []byte {
	b := w.joinBuf[:0]
	for _, ch := range w.queue {
		b = append(b, ch.b...)
	}
	w.joinBuf = nil
	clear(w.queue)
	w.queue, w.queued = w.queue[:0], 0
	return b
}

// putJoined gives a buffer from takeJoined back for reuse, unless it grew
// large or another is back already.
func (w *Conn) putJoined(b []byte) {
	if cap(b) > 64<<10 {
		return
	}
	w.mu.Lock()
	if w.joinBuf == nil {
		w.joinBuf = b[:0]
	}
	w.mu.Unlock()
}

func hasFD(q []chunk) bool {
	for _, ch := range q {
		if ch.fd != nil {
			return true
		}
	}
	return false
}

// writeDirect makes one non-blocking write of raw while direct is set, and
// queues, first, what the socket did not take. The caller has set direct.
//
// Frames that other SendNow calls queued meanwhile are written next, by
// this goroutine, joined into one write (a few rounds at most, then the
// writer goroutine takes over): under load, concurrent callers share
// system calls, and the peer's wake-ups, without a handoff to the writer.
//
// It returns an error only when raw itself was not written: a later,
// joined write that fails closes the Conn, and its frames' senders learn
// it as they would from the writer goroutine.
func (w *Conn) writeDirect(raw []byte) error {
	n, err := tryWrite(w.rc, raw)
	own := err
	for round := 0; err == nil && n == len(raw) && round < 4; round++ {
		w.mu.Lock()
		if len(w.queue) == 0 || w.closed || w.corked || w.queued > 256<<10 || hasFD(w.queue) {
			w.mu.Unlock()
			break
		}
		b := w.takeJoined()
		w.mu.Unlock()
		raw = b
		n, err = tryWrite(w.rc, raw)
		if n == len(raw) {
			w.putJoined(b) // else raw's rest is copied below
		}
	}

	w.mu.Lock()
	w.direct = false
	if err != nil {
		w.closed = true
		if w.err == nil {
			w.err = err
		}
		w.queue, w.queued = nil, 0
	} else if n < len(raw) {
		// The rest goes first: it is the middle of a frame. A copy: raw
		// may be a buffer its caller reuses.
		w.queue = append([]chunk{{b: slices.Clone(raw[n:])}}, w.queue...)
		w.queued += len(raw) - n
	}
	wake := len(w.queue) > 0 || w.closed
	w.mu.Unlock()
	if wake {
		w.wakeWriter()
	}
	if own != nil {
		return fmt.Errorf("%w: %w", ErrClosed, own)
	}
	return nil
}

// refuse says why a frame of n bytes cannot be queued now, if it cannot.
// The caller holds mu.
func (w *Conn) refuse(n int) error {
	if w.closed {
		if w.err != nil {
			return fmt.Errorf("%w: %w", ErrClosed, w.err)
		}
		return ErrClosed
	}
	if w.queued+n > w.maxQueue {
		return fmt.Errorf("%w (%d bytes queued)", ErrBacklog, w.queued)
	}
	return nil
}

func (w *Conn) enqueue(raw []byte) {
	w.queue = append(w.queue, chunk{b: raw})
	w.queued += len(raw)
}

// SendFD queues a raw frame with a descriptor, which the peer receives
// with the frame's first byte (SCM_RIGHTS) and takes with TakeFD once it
// has read the frame. The Conn closes f once it is sent, or dropped.
func (w *Conn) SendFD(raw []byte, f *os.File) error {
	w.mu.Lock()
	if err := w.refuse(len(raw)); err != nil {
		w.mu.Unlock()
		f.Close()
		return err
	}
	w.queue = append(w.queue, chunk{b: raw, fd: f})
	w.queued += len(raw)
	w.mu.Unlock()
	w.wakeWriter()
	return nil
}

// TakeFD returns the oldest descriptor received and not yet taken, or nil.
// Frames that carry one are read after it arrived, so the reader of such a
// frame finds its descriptor here.
func (w *Conn) TakeFD() *os.File {
	w.fdMu.Lock()
	defer w.fdMu.Unlock()
	if len(w.fds) == 0 {
		return nil
	}
	f := w.fds[0]
	w.fds = w.fds[1:]
	return f
}

func (w *Conn) keepFD(f *os.File) {
	w.fdMu.Lock()
	w.fds = append(w.fds, f)
	w.fdMu.Unlock()
}

func (w *Conn) wakeWriter() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
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
	bw := bufio.NewWriterSize(writer(w.c, w.rc), 64<<10)
	var batch []chunk
	for {
		w.mu.Lock()
		if w.direct || (w.corked && !w.closed) {
			// A SendNow is writing, or the reader corked the channel;
			// SendNow or Uncork wakes us when it is done.
			w.mu.Unlock()
			<-w.wake
			continue
		}
		batch, w.queue = w.queue, batch[:0]
		w.queued = 0
		closed := w.closed
		w.writing = len(batch) > 0
		w.mu.Unlock()
		for i, ch := range batch {
			var err error
			if ch.fd != nil {
				err = w.writeFD(bw, ch)
			} else {
				_, err = bw.Write(ch.b)
			}
			if err != nil {
				for _, rest := range batch[i:] {
					if rest.fd != nil {
						rest.fd.Close()
					}
				}
				w.fail(err)
				return
			}
			batch[i] = chunk{}
		}
		if len(batch) > 0 {
			err := bw.Flush()
			w.mu.Lock()
			w.writing = false
			w.mu.Unlock()
			if err != nil {
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

// writeFD writes what is buffered, then the chunk with its descriptor.
func (w *Conn) writeFD(bw *bufio.Writer, ch chunk) error {
	defer ch.fd.Close()
	if err := bw.Flush(); err != nil {
		return err
	}
	if w.rc == nil {
		return errors.New("this channel cannot pass descriptors")
	}
	n, err := sendFD(w.rc, ch.b, int(ch.fd.Fd()))
	if err != nil {
		return err
	}
	_, err = bw.Write(ch.b[n:])
	return err
}

func (w *Conn) fail(err error) {
	w.mu.Lock()
	w.closed = true
	if w.err == nil {
		w.err = err
	}
	for _, ch := range w.queue {
		if ch.fd != nil {
			ch.fd.Close()
		}
	}
	w.queue, w.queued = nil, 0
	w.mu.Unlock()
}

// Buffered is how many bytes the reader has read from the socket and not
// yet returned as frames: more than 0 means Read will not wait.
func (w *Conn) Buffered() int { return w.r.Buffered() }

// Read returns the next raw frame. Its header has been checked, so the
// accessors and Parse may be used on it.
func (w *Conn) Read() ([]byte, error) {
	var lenb [4]byte
	if _, err := io.ReadFull(w.r, lenb[:]); err != nil {
		return nil, err
	}
	n := int(binary.LittleEndian.Uint32(lenb[:]))
	if n < HeaderLen-4 || n > w.maxFrame+MaxAction+HeaderLen+8 {
		return nil, fmt.Errorf("%w: length %d outside [%d, %d]", ErrMalformed, n, HeaderLen-4, w.maxFrame+MaxAction+HeaderLen+8)
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
	for f := w.TakeFD(); f != nil; f = w.TakeFD() {
		f.Close()
	}
	if already || errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

// Done is closed when the writer has stopped (after Close, or a write error).
func (w *Conn) Done() <-chan struct{} { return w.done }
