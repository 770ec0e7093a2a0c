package logfile

import "log/slog"

// NewJSONHandler returns a slog handler that writes each record to f as one
// JSON line. slog's JSONHandler formats a whole record into a buffer and
// hands it to one Write (TestJSONHandlerOneWritePerRecord checks this still
// holds), and File turns that Write into one write(2), so records from
// different processes never interleave.
func NewJSONHandler(f *File, opts *slog.HandlerOptions) *slog.JSONHandler {
	return slog.NewJSONHandler(f, opts)
}

// NewLogger returns a logger that writes JSON lines to f.
func NewLogger(f *File, opts *slog.HandlerOptions) *slog.Logger {
	return slog.New(NewJSONHandler(f, opts))
}
