package middleware

import (
	"net/http"

	chimw "github.com/go-chi/chi/v5/middleware"
)

// wrapWriter returns w itself when an outer middleware already wrapped it
// with chi's WrapResponseWriter, so AccessLog and Recover stacked together
// share one wrapper (one allocation, one indirection) instead of two. chi's
// wrapper keeps http.Flusher, http.Hijacker, io.ReaderFrom and Unwrap (for
// http.ResponseController) visible to the handler.
func wrapWriter(w http.ResponseWriter, r *http.Request) chimw.WrapResponseWriter {
	if ww, ok := w.(chimw.WrapResponseWriter); ok {
		return ww
	}
	return chimw.NewWrapResponseWriter(w, r.ProtoMajor)
}

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
