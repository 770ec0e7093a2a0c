package middleware

import (
	"errors"
	"fmt"
	"io"
	"net/http"
)

// BodyLimit answers 413 Request Entity Too Large to a request whose body is
// longer than n bytes, so one client cannot tie up a worker's memory.
//
// A Content-Length over n is refused before the handler runs (and before a
// client waiting on "Expect: 100-continue" sends anything). A body without a
// length, or one that lies, is cut at n bytes by http.MaxBytesReader: the
// handler's read fails with *http.MaxBytesError, and if the handler has not
// written anything yet the response becomes a 413 at that moment. Whatever
// the handler writes after that (typically its own 400 for the failed read)
// is discarded, so the client sees one clear answer. The connection is
// closed after a 413, since the rest of the body is still on it.
//
// chi's RequestSize only installs the MaxBytesReader; the status then depends
// on what each handler does with the error.
//
// n < 0 is treated as 0, as MaxBytesReader does.
func BodyLimit(n int64) func(http.Handler) http.Handler {
	n = max(n, 0)
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.ContentLength > n {
				tooLarge(w, n)
				return
			}
			if r.Body == nil || r.Body == http.NoBody {
				next.ServeHTTP(w, r)
				return
			}
			ww := &responseWriter{ResponseWriter: w}
			body := &limitedBody{
				// MaxBytesReader tells the server the body was cut short
				// only through the writer net/http created.
				ReadCloser: http.MaxBytesReader(baseWriter(w), r.Body, n),
				onExceed: func() {
					if ww.Status() == 0 {
						tooLarge(w, n)
						ww.Discard()
					}
				},
			}
			r2 := *r // like r.WithContext: never change the caller's request
			r2.Body = body
			next.ServeHTTP(ww, &r2)
		})
	}
}

func tooLarge(w http.ResponseWriter, n int64) {
	w.Header().Set("Connection", "close")
	http.Error(w, fmt.Sprintf("request body larger than %d bytes", n), http.StatusRequestEntityTooLarge)
}

type limitedBody struct {
	io.ReadCloser
	onExceed func()
	exceeded bool
}

func (b *limitedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	var tooBig *http.MaxBytesError
	if err != nil && !b.exceeded && errors.As(err, &tooBig) {
		b.exceeded = true
		b.onExceed()
	}
	return n, err
}
