package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/broodhq/brood/internal/control"
)

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `usage: broodctl [flags] command

commands:
  status        show every process of the master (-json for the raw status)
  top           watch the master live: rates, queues, restarts (q quits)
  reload        replace the workers one by one with the binary now on disk
  stop          stop gracefully
  scale N       run N workers
  reopen-logs   reopen log files, after logrotate has moved them
  pprof WHO KIND
                a profile of the master, the agent or worker N
                (WHO: master, agent, worker N; KIND: cpu, heap, allocs,
                goroutine, mutex, block, threadcreate, trace), written to
                -o or a file named after it, for go tool pprof

The master is found by -socket, by $%s, by -app and -port, or
as the only one in %s.
status --fleet -app NAME [-redis URL] lists every host of the app's fleet
instead, from its Redis ($BROOD_FLEET_REDIS).

flags:
`

// run is the whole command, minus the process: exit code out, output to
// the writers given, so tests run it in-process.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if code, ok := fleetCommand(ctx, args, stdout, stderr); ok {
		return code
	}
	fs := flag.NewFlagSet("broodctl", flag.ContinueOnError)
	fs.SetOutput(stderr)
	socket := fs.String("socket", "", "control socket `path`")
	app := fs.String("app", "", "the app's `name`, to find its socket")
	port := fs.Int("port", 0, "the `port` the app serves, to find its socket")
	asJSON := fs.Bool("json", false, "status: print the raw status as JSON")
	timeout := fs.Duration("timeout", 10*time.Second, "how long to wait for the master")
	interval := fs.Duration("interval", time.Second, "top: time between two refreshes")
	out := fs.String("o", "", "pprof: write the profile to `file`")
	seconds := fs.Int("seconds", 0, "pprof: how long a cpu, trace, mutex or block profile records (0: 5)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, usage, control.EnvSocket, control.DefaultDir())
		fs.PrintDefaults()
	}

	// Flags may come after the command too: "broodctl status --json".
	var words []string
	for rest := args; ; {
		if err := fs.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return 0
			}
			return 2
		}
		if fs.NArg() == 0 {
			break
		}
		words = append(words, fs.Arg(0))
		rest = fs.Args()[1:]
	}

	if len(words) > 0 && words[0] == "top" {
		if len(words) > 1 || *interval <= 0 {
			fmt.Fprintf(stderr, "broodctl: top takes no arguments and an -interval above 0\n")
			return 2
		}
		path, err := findSocket(*socket, *app, *port, stderr)
		if err != nil {
			fmt.Fprintf(stderr, "broodctl: %v\n", err)
			return 1
		}
		return runTop(ctx, topOptions{path: path, interval: *interval, timeout: min(*timeout, 5*time.Second)}, stdout, stderr)
	}

	var req control.Request
	var err error
	if len(words) > 0 && words[0] == control.CmdPprof {
		req, err = pprofRequest(words[1:], *seconds)
		if err == nil && req.Seconds > 0 {
			*timeout += time.Duration(req.Seconds) * time.Second
		} else if err == nil {
			*timeout += 5 * time.Second
		}
	} else {
		req, err = request(words)
	}
	if err != nil {
		fmt.Fprintf(stderr, "broodctl: %v\n", err)
		fs.Usage()
		return 2
	}
	path, err := findSocket(*socket, *app, *port, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "broodctl: %v\n", err)
		return 1
	}

	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	resp, err := control.Do(ctx, path, req)
	if err != nil {
		fmt.Fprintf(stderr, "broodctl: %v\n", err)
		return 1
	}
	if !resp.OK {
		fmt.Fprintf(stderr, "broodctl: %s: %v\n", req.Cmd, resp.Err())
		return 1
	}
	if req.Cmd == control.CmdPprof {
		path := *out
		if path == "" {
			path = pprofFile(req, time.Now())
		}
		msg, err := writeProfile(path, req, resp.Data)
		if err != nil {
			fmt.Fprintf(stderr, "broodctl: %v\n", err)
			return 1
		}
		fmt.Fprintln(stdout, msg)
		return 0
	}
	if err := show(stdout, req, resp, *asJSON); err != nil {
		fmt.Fprintf(stderr, "broodctl: %v\n", err)
		return 1
	}
	return 0
}

// request turns the command words into a request.
func request(words []string) (control.Request, error) {
	if len(words) == 0 {
		return control.Request{}, errors.New("no command")
	}
	req := control.Request{Cmd: words[0]}
	args := words[1:]
	if req.Cmd == control.CmdScale {
		if len(args) != 1 {
			return req, errors.New("scale needs the number of workers: broodctl scale N")
		}
		n, err := strconv.Atoi(args[0])
		if err != nil || n < 0 {
			return req, fmt.Errorf("scale: %q is not a number of workers", args[0])
		}
		req.N = n
		args = nil
	}
	if len(args) > 0 {
		return req, fmt.Errorf("%s takes no arguments, got %q", req.Cmd, strings.Join(args, " "))
	}
	return req, req.Validate()
}

func show(w io.Writer, req control.Request, resp control.Response, asJSON bool) error {
	switch {
	case req.Cmd == control.CmdStatus && resp.Status == nil:
		return errors.New("status: the master answered without a status")
	case req.Cmd == control.CmdStatus && asJSON:
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(resp.Status)
	case req.Cmd == control.CmdStatus:
		return writeStatus(w, resp.Status, time.Now())
	case resp.Message != "":
		_, err := fmt.Fprintln(w, resp.Message)
		return err
	}
	_, err := fmt.Fprintf(w, "%s: ok\n", req.Cmd)
	return err
}
