package scsstore_test

import (
	"encoding/json"
	"net/http"
	"net/http/cookiejar"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/alexedwards/scs/v2"
	"github.com/go-chi/chi/v5"

	"github.com/broodhq/brood/app"
	"github.com/broodhq/brood/framework"
	ct "github.com/broodhq/brood/internal/clustertest"
	"github.com/broodhq/brood/store/scsstore"
)

func TestMain(m *testing.M) {
	ct.Main(m, map[string]func() error{"sessions": runSessions})
}

type whoami struct {
	PID   int    `json:"pid"`
	Agent int    `json:"agent"`
	User  string `json:"user"`
}

// runSessions is a login that lives in scs sessions kept in the cluster's
// store.
func runSessions() error {
	sessions := scs.New()
	r := chi.NewRouter()
	r.Use(sessions.LoadAndSave)
	r.Get("/login", func(w http.ResponseWriter, r *http.Request) {
		if err := sessions.RenewToken(r.Context()); err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		sessions.Put(r.Context(), "user", r.FormValue("user"))
	})
	r.Get("/whoami", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(whoami{
			PID: os.Getpid(), Agent: app.FromContext(r.Context()).Messenger().AgentPID(),
			User: sessions.GetString(r.Context(), "user"),
		})
	})
	return framework.Run(r, framework.WithApp(func(a *app.App) error {
		sessions.Store = scsstore.New(a.Store())
		return nil
	}))
}

func who(t *testing.T, cl *http.Client, c *ct.Cluster) whoami {
	t.Helper()
	resp, err := cl.Get(c.URL("/whoami"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var w whoami
	if err := json.NewDecoder(resp.Body).Decode(&w); err != nil || resp.StatusCode != 200 {
		t.Fatalf("whoami: %d, %v", resp.StatusCode, err)
	}
	return w
}

// TestSessionIsSeenByEveryWorker: a login on one worker is a login on
// every other, and it survives a worker's and the agent's SIGKILL.
func TestSessionIsSeenByEveryWorker(t *testing.T) {
	c := ct.Start(t, "sessions", "BROOD_ADDR=127.0.0.1:0", "BROOD_WORKERS=3")
	c.WaitReady(60 * time.Second)
	jar, _ := cookiejar.New(nil)
	// One keep-alive client per worker, all sharing the cookie.
	byPID := map[int]*http.Client{}
	for range 500 {
		cl := &http.Client{Jar: jar, Timeout: 60 * time.Second, Transport: &http.Transport{MaxConnsPerHost: 1, MaxIdleConnsPerHost: 1}}
		pid := who(t, cl, c).PID
		if byPID[pid] != nil {
			cl.CloseIdleConnections()
			continue
		}
		byPID[pid] = cl
		if len(byPID) == 3 {
			break
		}
	}
	if len(byPID) != 3 {
		t.Fatalf("reached %d of 3 workers", len(byPID))
	}
	var first int
	for pid, cl := range byPID {
		first = pid
		if resp, err := cl.Get(c.URL("/login?user=alice")); err != nil || resp.StatusCode != 200 {
			t.Fatalf("login: %v", err)
		} else {
			resp.Body.Close()
		}
		break
	}
	for pid, cl := range byPID {
		if w := who(t, cl, c); w.User != "alice" || w.PID != pid {
			t.Fatalf("worker %d (logged in on %d) sees user %q; want alice", w.PID, first, w.User)
		}
	}

	// A worker's SIGKILL, then the agent's.
	syscall.Kill(first, syscall.SIGKILL)
	fresh := &http.Client{Jar: jar, Timeout: 60 * time.Second}
	deadline := time.Now().Add(30 * time.Second)
	for w := who(t, fresh, c); w.User != "alice"; w = who(t, fresh, c) {
		if time.Now().After(deadline) {
			t.Fatalf("after worker %d's SIGKILL, worker %d sees %q", first, w.PID, w.User)
		}
	}
	agent := who(t, fresh, c).Agent
	syscall.Kill(agent, syscall.SIGKILL)
	for range 20 {
		fresh.CloseIdleConnections() // spread over the workers
		if w := who(t, fresh, c); w.User != "alice" {
			t.Fatalf("after the agent's SIGKILL, worker %d sees %q; want alice", w.PID, w.User)
		}
	}
	if now := who(t, fresh, c).Agent; now == agent {
		t.Fatalf("agent still %d", now)
	}
}
