package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/broodhq/brood/internal/control"
)

// findSocket picks the master to talk to: the -socket flag, then
// $BROOD_CONTROL_SOCKET, then -app with -port, then the one master running
// for this user, narrowed by -app or -port if only one is given. It looks
// in the default directory and in the private ones a master uses when that
// is not safe (control.SearchDirs), skipping, with a note on notes, any
// directory that fails the master's own checks (control.CheckDir).
func findSocket(socket, app string, port int, notes io.Writer) (string, error) {
	if socket != "" {
		return socket, nil
	}
	if env := os.Getenv(control.EnvSocket); env != "" {
		return env, nil
	}
	dir := control.DefaultDir()
	var all []master
	for _, d := range control.SearchDirs() {
		if err := control.CheckDir(d); err != nil {
			if _, statErr := os.Lstat(d); statErr == nil {
				fmt.Fprintf(notes, "broodctl: ignoring %s: %v\n", d, err)
			}
			continue
		}
		ms, err := sockets(d)
		if err != nil {
			return "", err
		}
		all = append(all, ms...)
	}
	if app != "" && port != 0 {
		path, err := control.DefaultPath(app, port)
		for _, m := range all {
			if err == nil && filepath.Base(m.path) == filepath.Base(path) {
				return m.path, nil
			}
		}
		return path, err
	}
	var live, stale []master
	for _, m := range all {
		if app != "" && m.app != app || port != 0 && m.port != port {
			continue
		}
		if answers(m.path) {
			live = append(live, m)
		} else {
			stale = append(stale, m)
		}
	}
	switch {
	case len(live) == 1:
		return live[0].path, nil
	case len(live) > 1:
		return "", fmt.Errorf("%d brood masters are running; choose one with -app NAME -port N or -socket PATH:\n%s", len(live), list(live))
	}
	what := "no brood master is running for this user"
	if app != "" || port != 0 {
		what = "no brood master matching" + filter(app, port) + " is running for this user"
	}
	msg := fmt.Sprintf("%s: no control socket in %s", what, dir)
	if len(stale) > 0 {
		msg = fmt.Sprintf("%s: no control socket answers in %s; these were left behind by masters that died:\n%s", what, dir, list(stale))
	}
	return "", errors.New(msg + "\n(a master given another socket path needs -socket PATH)")
}

type master struct {
	path, app string
	port      int
}

// sockets lists the sockets in dir named as DefaultPath names them.
func sockets(dir string) ([]master, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("look for control sockets: %w", err)
	}
	var ms []master
	for _, e := range entries {
		name := e.Name()
		if e.Type()&fs.ModeSocket == 0 || strings.HasPrefix(name, ".") || !strings.HasSuffix(name, control.SocketExt) {
			continue
		}
		m := master{path: filepath.Join(dir, name), app: strings.TrimSuffix(name, control.SocketExt)}
		if i := strings.LastIndexByte(m.app, '-'); i > 0 {
			if p, err := strconv.Atoi(m.app[i+1:]); err == nil {
				m.app, m.port = m.app[:i], p
			}
		}
		ms = append(ms, m)
	}
	return ms, nil
}

func answers(path string) bool {
	c, err := net.DialTimeout("unix", path, time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

func list(ms []master) string {
	var b strings.Builder
	for _, m := range ms {
		if m.port == 0 { // not a name DefaultPath gave
			fmt.Fprintf(&b, "  -socket %s\n", m.path)
			continue
		}
		fmt.Fprintf(&b, "  -app %s -port %d  (%s)\n", m.app, m.port, m.path)
	}
	return strings.TrimSuffix(b.String(), "\n")
}

func filter(app string, port int) string {
	var s string
	if app != "" {
		s += " -app " + app
	}
	if port != 0 {
		s += " -port " + strconv.Itoa(port)
	}
	return s
}
