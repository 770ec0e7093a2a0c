package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"time"
)

// ErrNotRunning means nothing answers on the socket path: no master, or one
// that died and left its socket file behind.
var ErrNotRunning = errors.New("no brood master is running")

// Do sends req to the master listening at path and returns its response.
// The error is about getting there and back; a refusal is a Response with
// OK false (see Response.Err). ctx bounds the whole exchange.
func Do(ctx context.Context, path string, req Request) (Response, error) {
	if err := req.Validate(); err != nil {
		return Response{}, err
	}
	if err := CheckDir(filepath.Dir(path)); err != nil {
		return Response{}, fmt.Errorf("%w; not sending %q to a socket there", err, req.Cmd)
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return Response{}, dialError(path, err)
	}
	defer c.Close()
	if err := checkPeer(c); err != nil {
		return Response{}, fmt.Errorf("control socket %s: %w: it is not our master; not sending %q (remove the socket if it is not yours, or run broodctl as the user that runs the master)", path, err, req.Cmd)
	}
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
		// The answer needs time to come back: the master must have begun
		// by a little before we stop waiting.
		req.DeadlineMS = dl.Add(-min(time.Until(dl)/4, 500*time.Millisecond)).UnixMilli()
	}
	// Cancellation without a deadline: a deadline in the past fails the
	// read or write in progress.
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	line, err := json.Marshal(req)
	if err != nil {
		return Response{}, fmt.Errorf("control request: %w", err)
	}
	if _, err := c.Write(append(line, '\n')); err != nil {
		return Response{}, exchangeError(ctx, path, err)
	}
	line, err = readLine(c, MaxResponseSize)
	if err != nil {
		err = exchangeError(ctx, path, err)
		if errors.Is(err, context.DeadlineExceeded) && req.Cmd != CmdStatus {
			err = fmt.Errorf("%w; the master carries out no %s it has not begun by %s, but it may have begun it just before: check with status",
				err, req.Cmd, req.Deadline().Format("15:04:05.000"))
		}
		return Response{}, err
	}
	var resp Response
	if err := json.Unmarshal(line, &resp); err != nil {
		return Response{}, fmt.Errorf("control socket %s: malformed response: %w", path, err)
	}
	return resp, nil
}

func dialError(path string, err error) error {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%w: no socket at %s", ErrNotRunning, path)
	case errors.Is(err, fs.ErrPermission):
		return fmt.Errorf("control socket %s: permission denied; run this as the user that runs the master", path)
	case isRefused(err):
		return fmt.Errorf("%w: nothing answers on %s (a master that died leaves its socket behind)", ErrNotRunning, path)
	}
	return fmt.Errorf("control socket %s: %w", path, err)
}

func exchangeError(ctx context.Context, path string, err error) error {
	// The bare cause: net.OpError would name the peer by the temporary name
	// the socket was bound under (see bind), which means nothing to anyone.
	var op *net.OpError
	if errors.As(err, &op) {
		err = op.Err
	}
	switch {
	case ctx.Err() != nil && !errors.Is(context.Cause(ctx), context.DeadlineExceeded):
		return fmt.Errorf("control socket %s: %w", path, context.Cause(ctx))
	case ctx.Err() != nil || errors.Is(err, os.ErrDeadlineExceeded):
		return fmt.Errorf("control socket %s: the master did not answer in time: %w", path, context.DeadlineExceeded)
	}
	return fmt.Errorf("control socket %s: %w", path, err)
}
