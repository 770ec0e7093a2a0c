package framework

import (
	"bufio"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/broodhq/brood/app"
	ct "github.com/broodhq/brood/internal/clustertest"
	"github.com/broodhq/brood/internal/proclog"
)

func init() {
	testApps["logs"] = func() error {
		return Run(testRouter(), withLogCheck(50*time.Millisecond),
			WithApp(func(a *app.App) error {
				a.Logger().Info("app hook ran")
				return nil
			}))
	}
}

func withLogCheck(d time.Duration) Option {
	return func(c *config) { c.logs.check = d }
}

// load sends n requests GET /?id=I from conc goroutines, every id once, and
// counts the ones answered 200.
func load(t *testing.T, c *ct.Cluster, n, conc int, during func(sent int64)) int64 {
	t.Helper()
	client := ct.Client(10 * time.Second)
	var next, ok atomic.Int64
	var wg sync.WaitGroup
	for range conc {
		wg.Go(func() {
			for {
				id := next.Add(1)
				if id > int64(n) {
					return
				}
				status, _, err := ct.Get(client, c.URL("/?id="+strconv.FormatInt(id, 10)))
				if err == nil && status == 200 {
					ok.Add(1)
				} else {
					t.Errorf("request %d: status %d, %v", id, status, err)
				}
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	for during != nil {
		select {
		case <-done:
			return ok.Load()
		default:
			during(next.Load()) // must return soon: the load ends on its own
		}
	}
	<-done
	return ok.Load()
}

// accessIDs reads every access log file in dir (live, rotated, gzipped, and
// any name starting with "access") and counts each request id. It fails the
// test on a line that is not one whole JSON record with slot and pid.
func accessIDs(t *testing.T, dir string) (map[int]int, []string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	ids := map[int]int{}
	var names []string
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), "access") {
			continue
		}
		names = append(names, e.Name())
		f, err := os.Open(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		var r io.Reader = f
		if strings.HasSuffix(e.Name(), ".gz") {
			zr, err := gzip.NewReader(f)
			if err != nil {
				t.Fatalf("%s: %v", e.Name(), err)
			}
			r = zr
		}
		s := bufio.NewScanner(r)
		s.Buffer(make([]byte, 64<<10), 1<<20)
		for s.Scan() {
			var rec struct {
				Msg    string `json:"msg"`
				Path   string `json:"path"`
				Status int    `json:"status"`
				Slot   int    `json:"slot"`
				PID    int    `json:"pid"`
			}
			if err := json.Unmarshal(s.Bytes(), &rec); err != nil {
				t.Fatalf("%s: line is not one JSON record (interleaved?): %q", e.Name(), s.Text())
			}
			if rec.Msg != "request" || rec.Slot < 1 || rec.PID == 0 {
				t.Fatalf("%s: access record without msg, slot or pid: %q", e.Name(), s.Text())
			}
			u, err := url.Parse(rec.Path)
			if err != nil {
				t.Fatalf("%s: bad path %q", e.Name(), rec.Path)
			}
			if id, err := strconv.Atoi(u.Query().Get("id")); err == nil {
				ids[id]++
			}
		}
		if err := s.Err(); err != nil {
			t.Fatalf("%s: %v", e.Name(), err)
		}
		f.Close()
	}
	return ids, names
}

func checkEveryIDOnce(t *testing.T, ids map[int]int, n int) {
	t.Helper()
	var lost, dup []int
	for id := 1; id <= n; id++ {
		switch ids[id] {
		case 1:
		case 0:
			lost = append(lost, id)
		default:
			dup = append(dup, id)
		}
	}
	if len(lost) > 0 || len(dup) > 0 || len(ids) != n {
		t.Errorf("of %d requests, %d lines lost (e.g. %v) and %d written twice (e.g. %v); %d distinct ids logged",
			n, len(lost), head(lost), len(dup), head(dup), len(ids))
	}
}

func head(s []int) []int { return s[:min(len(s), 5)] }

func stopCluster(t *testing.T, c *ct.Cluster) {
	t.Helper()
	c.Signal(syscall.SIGTERM)
	exitsCleanly(t, c, 60*time.Second)
}

func TestLogFilesRotateBySizeUnderLoad(t *testing.T) {
	dir := t.TempDir()
	c := ct.Start(t, "logs", local, "BROOD_WORKERS=3", "BROOD_LOG_DIR="+dir,
		"BROOD_LOG_MAX_SIZE=64KB", "BROOD_LOG_KEEP=0", "BROOD_LOG_COMPRESS=true")
	c.WaitReady(30 * time.Second)

	const n = 20000
	if got := load(t, c, n, 8, nil); got != n {
		t.Fatalf("%d of %d requests answered", got, n)
	}
	if _, _, err := c.WaitLog(30*time.Second, 0, ct.Msg("log files reopened by every process")); err != nil {
		t.Fatalf("no rotation finished: %v", err)
	}
	stopCluster(t, c)

	ids, names := accessIDs(t, dir)
	checkEveryIDOnce(t, ids, n)
	var rotated, gz int
	for _, name := range names {
		if name != proclog.AccessLogName {
			rotated++
		}
		if strings.HasSuffix(name, ".gz") {
			gz++
		}
	}
	t.Logf("%d requests, %d rotated access logs, %d gzipped", n, rotated, gz)
	if rotated < 3 || gz < 1 {
		t.Errorf("got %d rotated access logs, %d of them gzipped (%v); want at least 3 and 1", rotated, gz, names)
	}
	checkAppLog(t, dir)
}

// checkAppLog checks that the app logs, live and rotated, hold whole JSON
// records from the master, the agent and the workers.
func checkAppLog(t *testing.T, dir string) {
	t.Helper()
	names, _ := filepath.Glob(filepath.Join(dir, "app*.log*"))
	roles := map[string]bool{}
	for _, name := range names {
		f, err := os.Open(name)
		if err != nil {
			t.Fatal(err)
		}
		var r io.Reader = f
		if strings.HasSuffix(name, ".gz") {
			if r, err = gzip.NewReader(f); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
		}
		s := bufio.NewScanner(r)
		s.Buffer(make([]byte, 64<<10), 1<<20)
		for s.Scan() {
			var rec struct{ Role string }
			if err := json.Unmarshal(s.Bytes(), &rec); err != nil {
				t.Fatalf("%s: line is not one JSON record: %q", name, s.Text())
			}
			roles[rec.Role] = true
		}
		f.Close()
	}
	for _, r := range []string{"master", "agent", "worker"} {
		if !roles[r] {
			t.Errorf("app logs have no record from the %s (roles seen: %v)", r, roles)
		}
	}
}

func TestSIGUSR1ReopensEveryProcessUnderLoad(t *testing.T) {
	dir := t.TempDir()
	c := ct.Start(t, "logs", local, "BROOD_WORKERS=3", "BROOD_LOG_DIR="+dir)
	c.WaitReady(30 * time.Second)

	const n, rounds = 12000, 4
	var moved []string
	after := 0
	load(t, c, n, 8, func(sent int64) {
		if len(moved) == rounds || sent < int64(len(moved)+1)*n/(rounds+2) {
			time.Sleep(20 * time.Millisecond)
			return
		}
		// What logrotate does: rename, then signal the master.
		name := fmt.Sprintf("access.log.%d", len(moved)+1)
		if err := os.Rename(filepath.Join(dir, proclog.AccessLogName), filepath.Join(dir, name)); err != nil {
			t.Error(err)
			return
		}
		c.Signal(syscall.SIGUSR1)
		_, at, err := c.WaitLog(20*time.Second, after, ct.Msg("log files reopened by every process"))
		if err != nil {
			t.Errorf("after SIGUSR1: %v", err)
			return
		}
		after = at + 1
		moved = append(moved, name)
	})
	if len(moved) < 2 {
		t.Fatalf("only %d reopen rounds happened during the load", len(moved))
	}
	t.Logf("%d requests, %d renames and SIGUSR1 under load", n, len(moved))
	// Once the master said every process reopened, nothing more may go to
	// a renamed file.
	sizes := map[string]int64{}
	for _, name := range moved {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		sizes[name] = fi.Size()
	}
	stopCluster(t, c)
	for name, size := range sizes {
		if fi, _ := os.Stat(filepath.Join(dir, name)); fi == nil || fi.Size() != size {
			t.Errorf("%s grew after every process had reopened", name)
		}
	}
	ids, _ := accessIDs(t, dir)
	checkEveryIDOnce(t, ids, n)
}

func TestLogOptionsAreValidated(t *testing.T) {
	tests := []struct {
		name string
		opts []Option
		env  map[string]string
		want string
	}{
		{"size units", nil, map[string]string{"BROOD_LOG_MAX_SIZE": "100 parsecs"}, "$BROOD_LOG_MAX_SIZE"},
		{"tiny size", []Option{WithLogMaxSize(100)}, nil, "WithLogMaxSize 100"},
		{"tiny size from env", nil, map[string]string{"BROOD_LOG_MAX_SIZE": "1KB"}, "$BROOD_LOG_MAX_SIZE 1000"},
		{"negative keep", []Option{WithLogKeep(-1)}, nil, "WithLogKeep -1"},
		{"keep from env", nil, map[string]string{"BROOD_LOG_KEEP": "lots"}, "$BROOD_LOG_KEEP"},
		{"compress", nil, map[string]string{"BROOD_LOG_COMPRESS": "gzip"}, "$BROOD_LOG_COMPRESS"},
		{"daily", nil, map[string]string{"BROOD_LOG_DAILY": "nightly"}, "$BROOD_LOG_DAILY"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := resolve(tt.opts, func(k string) string { return tt.env[k] })
			var ce *ConfigError
			if !errors.Is(err, ErrConfig) || !errors.As(err, &ce) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want a ConfigError naming %s", err, tt.want)
			}
		})
	}

	c, err := resolve([]Option{WithLogDir("/var/log/x"), WithLogKeep(3)}, func(k string) string {
		return map[string]string{"BROOD_LOG_MAX_SIZE": "100MB", "BROOD_LOG_COMPRESS": "true", "BROOD_LOG_DAILY": "false"}[k]
	})
	if err != nil {
		t.Fatal(err)
	}
	got := c.logs
	if got.dir != "/var/log/x" || got.maxSize != 100_000_000 || got.keep != 3 || !got.compress || got.daily {
		t.Errorf("got %+v, want dir /var/log/x, 100MB, keep 3, compressed, not daily", got)
	}
	if c, _ := resolve(nil, func(string) string { return "" }); c.logs.dir != "" || !c.logs.daily || c.logs.keep != defaultLogKeep || c.logs.maxSize != 0 {
		t.Errorf("defaults: got %+v, want no dir, daily, keep %d, no size limit", c.logs, defaultLogKeep)
	}
}
