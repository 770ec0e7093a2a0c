package control

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The peer tests run this test binary again as user nobody: a forger that
// serves a socket, or a client that dials one.
const peerChildEnv = "CONTROL_TEST_PEER"

func TestMain(m *testing.M) {
	if mode := os.Getenv(peerChildEnv); mode != "" {
		os.Exit(peerChild(mode, os.Getenv("CONTROL_TEST_PATH")))
	}
	os.Exit(m.Run())
}

func peerChild(mode, path string) int {
	switch mode {
	case "serve":
		s, err := Listen(path, func(context.Context, Request) Response {
			return Response{OK: true, Message: "forged"}
		}, nil)
		if err != nil {
			fmt.Println("listen:", err)
			return 1
		}
		os.Chmod(path, 0o666)
		fmt.Println("ready")
		io.Copy(io.Discard, os.Stdin) // until the test closes it
		s.Close()
		return 0
	case "record": // a master that says which commands it carried out
		s, err := Listen(path, func(_ context.Context, req Request) Response {
			fmt.Println("handled", req.Cmd)
			return Response{OK: true, Message: req.Cmd + " started"}
		}, nil)
		if err != nil {
			fmt.Println("listen:", err)
			return 1
		}
		fmt.Println("ready")
		io.Copy(io.Discard, os.Stdin)
		s.Close()
		return 0
	case "dial":
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		resp, err := Do(ctx, path, Request{Cmd: CmdStop})
		fmt.Printf("ok=%v message=%q error=%q err=%v\n", resp.OK, resp.Message, resp.Error, err)
		return 0
	}
	return 2
}

const nobody = 65534

// asNobody starts this test binary as user nobody, from a copy that nobody
// may execute, in a directory nobody may enter.
func asNobody(t *testing.T, mode, path string) *exec.Cmd {
	t.Helper()
	if os.Getuid() != 0 {
		t.Skip("needs root to run a process as another user")
	}
	exe := filepath.Join(openDir(t), "control.test")
	b, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(exe, b, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), peerChildEnv+"="+mode, "CONTROL_TEST_PATH="+path, "TMPDIR="+os.TempDir())
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
	return cmd
}

// openDir is a directory that nobody may enter and write.
func openDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for d := dir; d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if filepath.Dir(d) == "/tmp" {
			break
		}
	}
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	return dir
}

// serveAsNobody runs a forger's control socket at path.
func serveAsNobody(t *testing.T, path string) {
	t.Helper()
	cmd := asNobody(t, "serve", path)
	in, _ := cmd.StdinPipe()
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { in.Close(); cmd.Wait() })
	line, _ := bufio.NewReader(out).ReadString('\n')
	if line != "ready\n" {
		t.Fatalf("forger: %q", line)
	}
}

// A socket served by another user is not our master: the client sends it
// nothing, wherever it is.
func TestClientRefusesAPeerOfAnotherUser(t *testing.T) {
	path := filepath.Join(openDir(t), "forged.sock") // a directory the operator chose: trusted as it is
	serveAsNobody(t, path)
	resp, err := Do(context.Background(), path, Request{Cmd: CmdStop})
	if err == nil || !strings.Contains(err.Error(), "uid 65534") || resp.Message == "forged" {
		t.Fatalf("got %+v, %v; want a refusal naming uid 65534", resp, err)
	}
}

// The case: another user made the default directory first and
// put a socket in it. The master goes elsewhere; the client refuses both
// the directory and the socket.
func TestClientRefusesASquattedDefaultDirectory(t *testing.T) {
	tmp := openDir(t)
	t.Setenv("TMPDIR", tmp)
	t.Setenv("XDG_RUNTIME_DIR", "")
	dir := DefaultDir()
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(dir, nobody, nobody); err != nil {
		t.Fatal(err)
	}
	path, _ := DefaultPath("app", 1)
	serveAsNobody(t, path)
	resp, err := Do(context.Background(), path, Request{Cmd: CmdStatus})
	if err == nil || !strings.Contains(err.Error(), "owned by uid 65534") || resp.Message == "forged" {
		t.Fatalf("got %+v, %v; want a refusal of the directory owned by uid 65534", resp, err)
	}
}

// The master answers only our uid and root, even on a socket whose mode
// someone loosened.
func TestServerRefusesAClientOfAnotherUser(t *testing.T) {
	path := filepath.Join(openDir(t), "ctl.sock")
	stopped := false
	s := listen(t, path, func(_ context.Context, req Request) Response {
		stopped = stopped || req.Cmd == CmdStop
		return Response{OK: true, Message: "stopping"}
	})
	_ = s
	if err := os.Chmod(path, 0o666); err != nil {
		t.Fatal(err)
	}
	out, err := asNobody(t, "dial", path).CombinedOutput()
	if err != nil {
		t.Fatalf("client: %v: %s", err, out)
	}
	if !strings.Contains(string(out), "ok=false") || !strings.Contains(string(out), "uid 65534") || stopped {
		t.Errorf("a client of uid 65534 got %s (stopped=%v); want a refusal naming its uid", out, stopped)
	}
}
