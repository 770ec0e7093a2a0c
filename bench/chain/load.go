package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// load keeps conns connections busy with GET / on addr for d and returns
// the successful requests, their rate per second and the failures. It is the
// approach of bench/internal/loadgen cut down to what this measurement
// needs: one goroutine per kept-alive connection writing a request built
// once and reading the response with a parser that looks only at the status
// line and Content-Length, so the generator, which shares the two cores
// with the server, costs as little CPU as it can.
func load(addr string, conns int, d time.Duration) (ok int64, rps float64, failed int64) {
	req := []byte("GET / HTTP/1.1\r\nHost: " + addr + "\r\nUser-Agent: brood-bench-chain\r\n\r\n")
	var stop atomic.Bool
	var okN, bad atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range conns {
		wg.Go(func() {
			var n, f int64
			defer func() { okN.Add(n); bad.Add(f) }()
			var conn net.Conn
			br := bufio.NewReaderSize(nil, 4096)
			for !stop.Load() {
				if conn == nil {
					c, err := net.DialTimeout("tcp", addr, 5*time.Second)
					if err != nil {
						f++
						time.Sleep(10 * time.Millisecond)
						continue
					}
					conn = c
					br.Reset(c)
				}
				conn.SetDeadline(time.Now().Add(5 * time.Second))
				_, err := conn.Write(req)
				if err == nil {
					err = readResponse(br)
				}
				if err != nil {
					f++
					conn.Close()
					conn = nil
					continue
				}
				n++
			}
			if conn != nil {
				conn.Close()
			}
		})
	}
	time.Sleep(d)
	stop.Store(true)
	wg.Wait()
	return okN.Load(), float64(okN.Load()) / time.Since(start).Seconds(), bad.Load()
}

var errStatus = errors.New("status not 200")

// readResponse reads one response with a Content-Length body.
func readResponse(r *bufio.Reader) error {
	line, err := r.ReadSlice('\n')
	if err != nil {
		return err
	}
	if !bytes.HasPrefix(line, []byte("HTTP/1.1 200 ")) {
		return fmt.Errorf("%w: %q", errStatus, line)
	}
	length := -1
	for {
		line, err := r.ReadSlice('\n')
		if err != nil {
			return err
		}
		if len(line) <= 2 {
			break
		}
		if name, value, ok := bytes.Cut(line, []byte(":")); ok && bytes.EqualFold(name, []byte("Content-Length")) {
			if length, err = strconv.Atoi(string(bytes.TrimSpace(value))); err != nil {
				return fmt.Errorf("content-length %q: %w", value, err)
			}
		}
	}
	if length < 0 {
		return errors.New("response without Content-Length")
	}
	_, err = r.Discard(length)
	return err
}
