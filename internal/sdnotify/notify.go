package sdnotify

import (
	"fmt"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// EnvSocket is the environment variable that names the notify socket.
const EnvSocket = "NOTIFY_SOCKET"

// Notify sends state, one or more newline-separated KEY=VALUE lines, to the
// socket named by $NOTIFY_SOCKET. It returns nil without doing anything when
// the variable is unset.
func Notify(state string) error {
	addr := os.Getenv(EnvSocket)
	if addr == "" {
		return nil
	}
	if err := checkAddr(addr); err != nil {
		return err
	}
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		return fmt.Errorf("sd_notify %s: %w", addr, err)
	}
	defer c.Close()
	// A datagram socket's send does not block on a live receiver, but a
	// wedged service manager with a full queue must not hang the master.
	c.SetWriteDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte(state)); err != nil {
		return fmt.Errorf("sd_notify %s: %w", addr, err)
	}
	return nil
}

func checkAddr(addr string) error {
	switch {
	case addr[0] == '@':
		if runtime.GOOS != "linux" {
			return fmt.Errorf("sd_notify: %s=%s is an abstract socket, which only Linux has", EnvSocket, addr)
		}
	case addr[0] == '/':
	default:
		// systemd 253 also accepts vsock:CID:PORT, for notifying a host
		// from a virtual machine; brood does not run there as PID 1.
		return fmt.Errorf("sd_notify: %s=%q is neither an absolute path nor an abstract socket; unset it or fix the service manager's configuration", EnvSocket, addr)
	}
	return nil
}

// Ready says the service is up: all workers serve. Send it again at the
// end of every reload.
func Ready() error { return Notify("READY=1") }

// Reloading says a reload has begun. It carries the CLOCK_MONOTONIC time
// that systemd's Type=notify-reload needs to match the reload to its signal.
func Reloading() error {
	state := "RELOADING=1"
	if usec, ok := monotonicUsec(); ok {
		state += "\nMONOTONIC_USEC=" + strconv.FormatInt(usec, 10)
	}
	return Notify(state)
}

// Stopping says a stop has begun.
func Stopping() error { return Notify("STOPPING=1") }

// Status sets the one-line status that "systemctl status" shows. Newlines
// would start new KEY=VALUE lines, so they become spaces.
func Status(text string) error {
	return Notify("STATUS=" + strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ").Replace(text))
}

// Watchdog tells systemd the service is alive, for units with WatchdogSec=.
// Send it at about half of WatchdogInterval.
func Watchdog() error { return Notify("WATCHDOG=1") }

// WatchdogInterval is the watchdog timeout systemd expects this process to
// keep, and false when the watchdog is off or meant for another process.
func WatchdogInterval() (time.Duration, bool) {
	usec, err := strconv.ParseInt(os.Getenv("WATCHDOG_USEC"), 10, 64)
	if err != nil || usec <= 0 {
		return 0, false
	}
	if p := os.Getenv("WATCHDOG_PID"); p != "" && p != strconv.Itoa(os.Getpid()) {
		return 0, false
	}
	return time.Duration(usec) * time.Microsecond, true
}
