package loadgen

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Run sends load as cfg describes until cfg.Duration has passed, cfg.Requests
// have been sent or ctx is done, whichever comes first, then waits for the
// requests in flight (each bounded by cfg.Timeout) and returns what it
// measured. Failed requests are counted in the Result, not returned as
// errors; the error is for a Config that cannot run.
func Run(ctx context.Context, cfg Config) (Result, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return Result{}, fmt.Errorf("loadgen: %w", err)
	}
	t, err := parseTarget(cfg.URL)
	if err != nil {
		return Result{}, fmt.Errorf("loadgen: %w", err)
	}

	// The stop flag is read before every request; an atomic load costs
	// far less than asking a context.
	var stop atomic.Bool
	ctx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		<-ctx.Done()
		stop.Store(true)
	}()

	var budget atomic.Int64
	budget.Store(cfg.Requests)
	req := requestBytes(t, cfg.Fresh)
	workers := make([]*worker, cfg.Conns)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range workers {
		w := &worker{cfg: &cfg, addr: t.addr, req: req}
		if cfg.Header != nil {
			w.req = append(req[:len(req)-2:len(req)-2], cfg.Header(i)+"\r\n"...)
		}
		workers[i] = w
		wg.Go(func() { w.run(&stop, &budget) })
	}
	wg.Wait()
	elapsed := time.Since(start)
	cancel()
	<-watched

	var hist histogram
	res := Result{Generator: "load", URL: cfg.URL, Conns: cfg.Conns, Fresh: cfg.Fresh, Elapsed: elapsed.Seconds()}
	for _, w := range workers {
		hist.merge(&w.hist)
		res.OK += w.ok
		res.Errors.add(w.errs)
	}
	res.RPS = float64(res.OK) / elapsed.Seconds()
	res.P50, res.P90, res.P99 = Ms(hist.quantile(0.50)), Ms(hist.quantile(0.90)), Ms(hist.quantile(0.99))
	res.Max = Ms(hist.max)
	return res, nil
}

func requestBytes(t target, fresh bool) []byte {
	s := "GET " + t.path + " HTTP/1.1\r\nHost: " + t.host + "\r\nUser-Agent: brood-bench-load\r\nAccept: */*\r\n"
	if fresh {
		s += "Connection: close\r\n"
	}
	return []byte(s + "\r\n")
}

// worker drives one connection at a time and owns its own counters, so
// connections never contend on shared state while the load runs.
type worker struct {
	cfg  *Config
	addr string
	req  []byte

	conn net.Conn
	br   *bufio.Reader
	dial net.Dialer

	hist histogram
	ok   int64
	errs Errors
}

func (w *worker) run(stop *atomic.Bool, budget *atomic.Int64) {
	defer w.drop()
	w.br = bufio.NewReaderSize(nil, 4096)
	limited := w.cfg.Requests > 0
	for !stop.Load() {
		if limited && budget.Add(-1) < 0 {
			return
		}
		w.one()
	}
}

// one sends a request and reads its response, reconnecting first if the
// last request left no open connection.
func (w *worker) one() {
	start := time.Now()
	deadline := start.Add(w.cfg.Timeout)
	if w.conn == nil {
		w.dial.Deadline = deadline
		c, err := w.dial.Dial("tcp", w.addr)
		if err != nil {
			w.fail(err)
			return
		}
		w.conn = c
		w.br.Reset(c)
	}
	w.conn.SetDeadline(deadline)
	if _, err := w.conn.Write(w.req); err != nil {
		w.fail(err)
		w.drop()
		return
	}
	resp, err := readResponse(w.br)
	if err != nil {
		w.fail(err)
		w.drop()
		return
	}
	w.hist.record(time.Since(start))
	if resp.status/100 == 2 {
		w.ok++
	} else {
		w.errs.Non2xx++
	}
	if w.cfg.Fresh || resp.close {
		// Wait for the server's FIN before closing, so the server, not
		// this side, keeps the TIME_WAIT: otherwise a fresh-connection
		// run exhausts the loopback's ephemeral ports within seconds.
		io.Copy(io.Discard, w.br)
		w.drop()
	}
}

func (w *worker) drop() {
	if w.conn != nil {
		w.conn.Close()
		w.conn = nil
	}
}

func (w *worker) fail(err error) {
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		w.errs.Refused++
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		w.errs.Reset++
	case errors.Is(err, os.ErrDeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		w.errs.Timeout++
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		w.errs.Closed++
	default:
		w.errs.Other++
	}
}
