package main

import (
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// The baseline: the same four socket hops as a CallAgent (worker → master
// → agent → master → worker) between three bare Go processes, a relay in
// the middle copying bytes both ways and an echo at the end. It measures
// the floor this machine sets, at the moment of the run, for any design in
// which the master routes every message.

const envRelay = "BENCH_RELAY_ROLE"

// envRelayRaw=1 makes the echo use rawIO (the bare ping-pong).
const envRelayRaw = "BENCH_RELAY_RAW"

// relayChild plays the relay or the echo when started by baseline, and
// reports whether it did.
func relayChild() bool {
	switch os.Getenv(envRelay) {
	case "echo":
		conn := fileConn(3)
		var c io.ReadWriter = conn
		if os.Getenv(envRelayRaw) == "1" {
			rc, err := newRawIO(conn)
			if err != nil {
				panic(err)
			}
			c = rc
		}
		b := make([]byte, 512)
		for {
			n, err := c.Read(b)
			if err != nil {
				return true
			}
			if _, err := c.Write(b[:n]); err != nil {
				return true
			}
		}
	case "relay":
		a, b := fileConn(3), fileConn(4)
		go io.Copy(b, a)
		io.Copy(a, b)
		return true
	}
	return false
}

func fileConn(fd uintptr) net.Conn {
	f := os.NewFile(fd, "relay")
	c, err := net.FileConn(f)
	if err != nil {
		panic(err)
	}
	f.Close()
	return c
}

func socketpair() (*os.File, *os.File, error) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("socketpair: %w", err)
	}
	return os.NewFile(uintptr(fds[0]), "a"), os.NewFile(uintptr(fds[1]), "b"), nil
}

// baseline runs calls round trips of a 40-byte frame through the relay.
func baseline(calls int) ([]time.Duration, error) {
	toRelay, relayA, err := socketpair()
	if err != nil {
		return nil, err
	}
	relayB, toEcho, err := socketpair()
	if err != nil {
		return nil, err
	}
	exe, err := os.Executable() // in a child, argv[0] is its title
	if err != nil {
		return nil, err
	}
	start := func(role string, files ...*os.File) (*exec.Cmd, error) {
		cmd := exec.Command(exe)
		cmd.Env = append(os.Environ(), envRelay+"="+role)
		cmd.ExtraFiles = files
		cmd.Stderr = os.Stderr
		return cmd, cmd.Start()
	}
	echo, err := start("echo", toEcho)
	if err != nil {
		return nil, err
	}
	defer func() { echo.Process.Kill(); echo.Wait() }()
	relay, err := start("relay", relayA, relayB)
	if err != nil {
		return nil, err
	}
	defer func() { relay.Process.Kill(); relay.Wait() }()
	for _, f := range []*os.File{relayA, relayB, toEcho} {
		f.Close()
	}
	c, err := net.FileConn(toRelay)
	toRelay.Close()
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return roundTrips(c, calls)
}

// echoPeer starts a bare echo process at the other end of a socketpair:
// the two hops of a CallAgent on a direct channel, with nothing of brood's
// around them, both ends reading and writing with raw system calls as
// brood does (rawIO). stop ends it.
func echoPeer() (c *rawIO, stop func(), err error) {
	mine, theirs, err := socketpair()
	if err != nil {
		return nil, nil, err
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, nil, err
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), envRelay+"=echo", envRelayRaw+"=1")
	cmd.ExtraFiles = []*os.File{theirs}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, nil, err
	}
	theirs.Close()
	conn, err := net.FileConn(mine)
	mine.Close()
	if err == nil {
		c, err = newRawIO(conn)
	}
	if err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		return nil, nil, err
	}
	return c, func() { conn.Close(); cmd.Process.Kill(); cmd.Wait() }, nil
}

// pingOnce is one round trip of a 40-byte frame over c.
func pingOnce(c io.ReadWriter, b []byte) error {
	if _, err := c.Write(b); err != nil {
		return err
	}
	_, err := io.ReadFull(c, b)
	return err
}

// roundTrips writes a 40-byte frame to c and reads one back, 1000 times
// to warm up and then calls times, and returns the latencies of the last
// calls.
func roundTrips(c net.Conn, calls int) ([]time.Duration, error) {
	b := make([]byte, 40)
	lat := make([]time.Duration, 0, calls)
	for i := range calls + 1000 {
		t0 := time.Now()
		if _, err := c.Write(b); err != nil {
			return nil, err
		}
		if _, err := io.ReadFull(c, b); err != nil {
			return nil, err
		}
		if i >= 1000 {
			lat = append(lat, time.Since(t0))
		}
	}
	return lat, nil
}
