package middleware

import (
	"bufio"
	"io"
	"net"
	"net/http"
)

// responseWriter records a response's status and size for AccessLog,
// Recover and BodyLimit, and keeps http.Flusher, http.Hijacker,
// io.ReaderFrom and Unwrap (for http.ResponseController) visible to the
// handler. It is ours rather than chi's WrapResponseWriter because
// importing chi's middleware package links net/http/pprof and expvar into
// every brood process (about 1 MiB of resident memory each) and registers
// /debug/pprof on http.DefaultServeMux as a side effect.
type responseWriter struct {
	http.ResponseWriter
	status      int // 0 until a final status is written
	bytes       int64
	wroteHeader bool
	discard     bool
	hijacked    bool // the handler took the connection over
}

// wrapWriter returns w itself when an outer middleware already wrapped it,
// so AccessLog and Recover stacked together share one wrapper (one
// allocation, one indirection) instead of two.
func wrapWriter(w http.ResponseWriter, _ *http.Request) *responseWriter {
	if ww, ok := w.(*responseWriter); ok {
		return ww
	}
	return &responseWriter{ResponseWriter: w}
}

func (w *responseWriter) WriteHeader(code int) {
	// Informational responses (103 Early Hints) may precede the final one.
	if code >= 100 && code <= 199 && code != http.StatusSwitchingProtocols {
		if !w.discard {
			w.ResponseWriter.WriteHeader(code)
		}
		return
	}
	if w.wroteHeader {
		return
	}
	w.wroteHeader, w.status = true, code
	if !w.discard {
		w.ResponseWriter.WriteHeader(code)
	}
}

func (w *responseWriter) Write(p []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if w.discard {
		return len(p), nil
	}
	n, err := w.ResponseWriter.Write(p)
	w.bytes += int64(n)
	return n, err
}

// ReadFrom keeps io.Copy to the response on net/http's sendfile path.
func (w *responseWriter) ReadFrom(r io.Reader) (int64, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if w.discard {
		return io.Copy(io.Discard, r)
	}
	n, err := io.Copy(w.ResponseWriter, r)
	w.bytes += n
	return n, err
}

func (w *responseWriter) Flush() {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !w.discard {
		_ = http.NewResponseController(w.ResponseWriter).Flush()
	}
}

func (w *responseWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, rw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err == nil {
		w.hijacked = true
	}
	return c, rw, err
}

func (w *responseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Status is the final status written so far, 0 if none.
func (w *responseWriter) Status() int { return w.status }

// BytesWritten is the size of the body written so far.
func (w *responseWriter) BytesWritten() int { return int(w.bytes) }

// Discard drops everything written from now on.
func (w *responseWriter) Discard() { w.discard = true }

// baseWriter follows Unwrap to the ResponseWriter net/http created. Only
// that one can tell the server a request body was cut short (see BodyLimit).
func baseWriter(w http.ResponseWriter) http.ResponseWriter {
	for {
		u, ok := w.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			return w
		}
		w = u.Unwrap()
	}
}
