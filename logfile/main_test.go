package logfile

import (
	"bufio"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// The multi-process tests re-run this test binary as writer processes; the
// environment variable childEnv selects that role (the tableflip pattern).
const childEnv = "LOGFILE_TEST_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		if err := runWriterChild(); err != nil {
			fmt.Fprintln(os.Stderr, "writer child:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// testLine returns the line goroutine g of child c writes as its n-th. Its
// length varies, some lines exceed PIPE_BUF, and the padding letter names
// the child, so a torn or interleaved write cannot pass checkLine.
func testLine(c, g, n int) []byte {
	size := (n % 23) * 20
	if n%500 == 7 {
		size = 6000
	}
	pad := strings.Repeat(string(rune('a'+c%26)), size)
	return fmt.Appendf(nil, `{"c":%d,"g":%d,"n":%d,"pad":"%s"}`+"\n", c, g, n, pad)
}

// runWriterChild writes numbered lines from several goroutines as fast as it
// can, reopening the file on SIGUSR1 and on a "reopen" line on stdin, and
// acknowledging each reopen with "reopened" on stdout once Reopen returned.
// It prints "finished" when it has written everything and exits when stdin
// closes.
func runWriterChild() error {
	id, _ := strconv.Atoi(os.Getenv("LOGFILE_TEST_ID"))
	lines, _ := strconv.Atoi(os.Getenv("LOGFILE_TEST_LINES"))
	goroutines, _ := strconv.Atoi(os.Getenv("LOGFILE_TEST_GOROUTINES"))
	f, err := Open(os.Getenv("LOGFILE_TEST_PATH"))
	if err != nil {
		return err
	}

	var outMu sync.Mutex
	say := func(s string) {
		outMu.Lock()
		defer outMu.Unlock()
		fmt.Fprintln(os.Stdout, s)
	}
	reopen := func() {
		if err := f.Reopen(); err != nil {
			fmt.Fprintln(os.Stderr, "writer child: reopen:", err)
			os.Exit(1)
		}
		say("reopened")
	}

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGUSR1)
	stop := make(chan struct{})
	var sigDone sync.WaitGroup
	sigDone.Go(func() {
		for {
			select {
			case <-sig:
				reopen()
			case <-stop:
				return
			}
		}
	})

	var writers sync.WaitGroup
	for g := range goroutines {
		writers.Go(func() {
			for n := range lines / goroutines {
				if _, err := f.Write(testLine(id, g, n)); err != nil {
					// A failed write is a lost line: fail loudly rather
					// than let the parent guess.
					fmt.Fprintln(os.Stderr, "writer child: write:", err)
					os.Exit(1)
				}
			}
		})
	}
	go func() {
		writers.Wait()
		say("finished")
	}()

	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		if in.Text() == "reopen" {
			reopen()
		}
	}
	writers.Wait()
	close(stop)
	sigDone.Wait()
	return f.Close()
}
