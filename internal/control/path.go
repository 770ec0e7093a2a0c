package control

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
)

// ErrPathTooLong is returned for a socket path the kernel cannot bind.
var ErrPathTooLong = errors.New("socket path too long")

// SocketExt is the extension of every socket brood names, so broodctl can
// find them in the default directory.
const SocketExt = ".sock"

// DefaultDir is the directory that holds this user's control sockets:
// $XDG_RUNTIME_DIR/brood when XDG_RUNTIME_DIR names a private directory of
// ours (systemd-logind makes one per login, cleaned at logout), else
// $TMPDIR/brood-<uid>. It neither creates nor checks the brood directory;
// Listen does both.
func DefaultDir() string {
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" && filepath.IsAbs(d) {
		if fi, err := os.Stat(d); err == nil && checkPrivate(d, fi) == nil {
			return filepath.Join(d, "brood")
		}
	}
	return filepath.Join(os.TempDir(), "brood-"+userTag())
}

// DefaultPath is the socket path of the master serving app on port:
// DefaultDir()/<app>-<port>.sock. Characters of app outside [A-Za-z0-9._-]
// become '_' so the name stays one path element.
func DefaultPath(app string, port int) (string, error) {
	name := sanitize(app)
	if name == "" {
		return "", errors.New("control socket: empty app name; name the app or set a socket path")
	}
	if port < 0 || port > 65535 {
		return "", fmt.Errorf("control socket: port %d out of range 0-65535", port)
	}
	path := filepath.Join(DefaultDir(), name+"-"+strconv.Itoa(port)+SocketExt)
	if err := checkLen(path); err != nil {
		return "", err
	}
	return path, nil
}

func sanitize(app string) string {
	b := []byte(app)
	for i, c := range b {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '-' || c == '_' || c == '.' && i > 0 // a leading dot would hide the socket
		if !ok {
			b[i] = '_'
		}
	}
	return string(b)
}

// checkLen fails early and clearly where bind would say "invalid argument".
func checkLen(path string) error {
	if len(path) > maxPathLen {
		return fmt.Errorf("control socket %q is %d bytes; %s allows %d: choose a shorter path: %w",
			path, len(path), runtime.GOOS, maxPathLen, ErrPathTooLong)
	}
	return nil
}

// prepareDir makes sure dir exists. A directory brood creates, and the
// default one whoever created it, must be private to us: anyone else who can
// write there could swap our socket for theirs and read what broodctl sends.
// A directory the operator chose and made is trusted as it is.
func prepareDir(dir string) error {
	created := false
	if _, err := os.Lstat(dir); errors.Is(err, os.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("control socket directory: %w", err)
		}
		created = true
	} else if err != nil {
		return fmt.Errorf("control socket directory: %w", err)
	}
	if !created && !isDefaultDir(dir) {
		return nil
	}
	return checkLstat(dir)
}

// CheckDir applies to the directory of a socket about to be used the
// checks Listen applies: the default directory, and the fallbacks Listen
// makes when it is not safe, must be ours and private, as Lstat sees them
// (a symlink planted in /tmp is not ours to follow). A directory the
// operator chose is trusted as it is; the peer's credentials are still
// checked on every connection.
func CheckDir(dir string) error {
	if !isDefaultDir(dir) {
		return nil
	}
	return checkLstat(dir)
}

func checkLstat(dir string) error {
	fi, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("control socket directory: %w", err)
	}
	return checkPrivate(dir, fi)
}

// isDefaultDir says whether dir is DefaultDir or one of Listen's fallbacks.
func isDefaultDir(dir string) bool {
	if sameDir(dir, DefaultDir()) {
		return true
	}
	parent, base := filepath.Split(filepath.Clean(dir))
	return sameDir(parent, os.TempDir()) && strings.HasPrefix(base, fallbackPrefix())
}

// fallbackPrefix starts the names of the private directories Listen makes
// in $TMPDIR when the default directory is not safe to use: someone else
// may have made $TMPDIR/brood-<uid> first, and a master must still start.
func fallbackPrefix() string { return "brood-" + userTag() + "." }

// SearchDirs are the directories broodctl looks in for the sockets of
// masters on default paths: DefaultDir, then the fallbacks Listen made.
func SearchDirs() []string {
	dirs := []string{DefaultDir()}
	more, _ := filepath.Glob(filepath.Join(os.TempDir(), fallbackPrefix()+"*"))
	return append(dirs, more...)
}

// unsafeDirError is a directory that is not private to us.
type unsafeDirError struct{ msg string }

func (e *unsafeDirError) Error() string { return e.msg }

func unsafeDir(format string, args ...any) error {
	return &unsafeDirError{fmt.Sprintf(format, args...)}
}

func sameDir(a, b string) bool {
	a, errA := filepath.Abs(a)
	b, errB := filepath.Abs(b)
	return errA == nil && errB == nil && a == b
}

// checkPrivate accepts a directory owned by us that nobody else may write.
func checkPrivate(dir string, fi os.FileInfo) error {
	if !fi.IsDir() {
		return unsafeDir("control socket directory %s is not a directory (%s); remove it or choose another socket path", dir, fi.Mode().Type())
	}
	if uid, ok := owner(fi); ok && uid != os.Getuid() {
		return unsafeDir("control socket directory %s is owned by uid %d, not by us (uid %d); remove it or choose another socket path", dir, uid, os.Getuid())
	}
	if perm := fi.Mode().Perm(); perm&0o022 != 0 && runtime.GOOS != "windows" {
		return unsafeDir("control socket directory %s is writable by others (mode %#o); run chmod 700 %s or choose another socket path", dir, perm, dir)
	}
	return nil
}

func userTag() string {
	if uid := os.Getuid(); uid >= 0 {
		return strconv.Itoa(uid)
	}
	for _, k := range []string{"USERNAME", "USER"} { // Windows has no uid
		if u := sanitize(os.Getenv(k)); u != "" {
			return strings.ToLower(u)
		}
	}
	return "user"
}
