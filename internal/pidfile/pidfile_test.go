//go:build unix

package pidfile

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func content(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestWriteFresh(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.pid")
	f, err := Write(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := strconv.Itoa(os.Getpid()) + "\n"; content(t, path) != want {
		t.Errorf("contents: got %q, want %q", content(t, path), want)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o644 {
		t.Errorf("mode: got %v, want 0644", fi.Mode().Perm())
	}
	if f.Stale != "" || f.PID != os.Getpid() || f.Path != path {
		t.Errorf("got %+v", f)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("directory holds %d entries, want just the pid file (no temporary left)", len(entries))
	}
}

func TestLiveProcessRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.pid")
	sleep := exec.Command("sleep", "60")
	if err := sleep.Start(); err != nil {
		t.Skipf("no sleep to stand in for another master: %v", err)
	}
	pid := sleep.Process.Pid
	t.Cleanup(func() { sleep.Process.Kill(); sleep.Wait() })
	other := strconv.Itoa(pid) + "\n"
	if err := os.WriteFile(path, []byte(other), 0o644); err != nil {
		t.Fatal(err)
	}

	_, err := Write(path)
	if !errors.Is(err, ErrRunning) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), strconv.Itoa(pid)) {
		t.Fatalf("got %v, want ErrRunning naming %s and pid %d", err, path, pid)
	}
	if content(t, path) != other {
		t.Errorf("a refused Write changed the file to %q", content(t, path))
	}

	// Once that process is gone its pid file is stale.
	sleep.Process.Kill()
	sleep.Wait()
	f, err := Write(path)
	if err != nil {
		t.Fatalf("Write over a dead pid: %v", err)
	}
	if f.StalePID != pid || !strings.Contains(f.Stale, "not running") {
		t.Errorf("got Stale %q, StalePID %d; want a note about pid %d", f.Stale, f.StalePID, pid)
	}
	if want := strconv.Itoa(os.Getpid()) + "\n"; content(t, path) != want {
		t.Errorf("contents: got %q, want %q", content(t, path), want)
	}
}

func TestParentRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.pid")
	os.WriteFile(path, []byte(strconv.Itoa(os.Getppid())), 0o644)
	if _, err := Write(path); !errors.Is(err, ErrRunning) {
		t.Errorf("pid file naming our parent: got %v, want ErrRunning", err)
	}
}

func TestStaleContents(t *testing.T) {
	tests := []struct{ name, contents, stale string }{
		{"garbage", "hello\n", "not a pid"},
		{"empty", "", "not a pid"},
		{"negative", "-5", "not a pid"},
		{"huge", strings.Repeat("1", 100), "not a pid"},
		{"ours", strconv.Itoa(os.Getpid()), ""},
		{"ours without newline, with spaces", " " + strconv.Itoa(os.Getpid()) + " ", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "app.pid")
			os.WriteFile(path, []byte(tt.contents), 0o644)
			f, err := Write(path)
			if err != nil {
				t.Fatal(err)
			}
			if tt.stale == "" && f.Stale != "" || !strings.Contains(f.Stale, tt.stale) {
				t.Errorf("Stale: got %q, want it to contain %q", f.Stale, tt.stale)
			}
			if want := strconv.Itoa(os.Getpid()) + "\n"; content(t, path) != want {
				t.Errorf("contents: got %q, want %q", content(t, path), want)
			}
		})
	}
}

func TestRemove(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.pid")
	f, err := Write(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Remove(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("after Remove: got %v, want the file gone", err)
	}
	if err := f.Remove(); err != nil {
		t.Errorf("second Remove: %v", err)
	}
}

func TestRemoveLeavesAnothersFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.pid")
	f, err := Write(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, other := range []string{"1\n", "garbage"} {
		os.WriteFile(path, []byte(other), 0o644)
		if err := f.Remove(); err == nil || !strings.Contains(err.Error(), "left it in place") {
			t.Errorf("Remove of a file holding %q: got %v, want a refusal", other, err)
		}
		if content(t, path) != other {
			t.Errorf("Remove changed a file it does not own to %q", content(t, path))
		}
	}
}

func TestMissingDirectory(t *testing.T) {
	path := filepath.Join(t.TempDir(), "missing", "app.pid")
	if _, err := Write(path); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("got %v, want it to say the directory does not exist", err)
	}
}
