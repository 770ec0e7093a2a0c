package storeagent_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/broodhq/brood/agent"
	"github.com/broodhq/brood/app"
	"github.com/broodhq/brood/framework"
	"github.com/broodhq/brood/internal/clustertest"
	"github.com/broodhq/brood/store"
	_ "github.com/broodhq/brood/store/redisstore" // $BROOD_STORE=redis://
)

func TestMain(m *testing.M) {
	clustertest.Main(m, map[string]func() error{"store": runStoreApp})
}

// reply is what every endpoint of the test application answers.
type reply struct {
	PID   int    `json:"pid"`
	Agent int    `json:"agent"`
	Value string `json:"value"`
	Found bool   `json:"found"`
	N     int64  `json:"n"`
	OK    int    `json:"ok"`
	Fail  int    `json:"fail"`
	Err   string `json:"err"`
}

// runStoreApp is the cluster the tests drive: each worker serves its store
// over HTTP.
func runStoreApp() error {
	r := chi.NewRouter()
	answer := func(w http.ResponseWriter, r *http.Request, rep reply, err error) {
		a := app.FromContext(r.Context())
		rep.PID, rep.Agent = os.Getpid(), a.Messenger().AgentPID()
		if err != nil {
			rep.Err = err.Error()
		}
		json.NewEncoder(w).Encode(rep)
	}
	ctx := func(r *http.Request) (context.Context, context.CancelFunc) {
		return context.WithTimeout(r.Context(), 20*time.Second)
	}
	r.Get("/pid", func(w http.ResponseWriter, r *http.Request) { answer(w, r, reply{}, nil) })
	r.Get("/set", func(w http.ResponseWriter, r *http.Request) {
		c, cancel := ctx(r)
		defer cancel()
		ttl, _ := time.ParseDuration(r.FormValue("ttl") + "ms")
		err := app.FromContext(r.Context()).Store().Set(c, r.FormValue("k"), []byte(r.FormValue("v")), ttl)
		answer(w, r, reply{}, err)
	})
	r.Get("/get", func(w http.ResponseWriter, r *http.Request) {
		c, cancel := ctx(r)
		defer cancel()
		v, found, err := app.FromContext(r.Context()).Store().Get(c, r.FormValue("k"))
		answer(w, r, reply{Value: string(v), Found: found}, err)
	})
	// /incr runs n Incr of key k from par goroutines and counts outcomes;
	// with until=PATH, as many as it can until that file exists (a minute
	// at most).
	r.Get("/incr", func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.FormValue("n"))
		par, _ := strconv.Atoi(r.FormValue("par"))
		until := r.FormValue("until")
		par = max(par, 1)
		s := app.FromContext(r.Context()).Store()
		var (
			mu      sync.Mutex
			rep     reply
			lastErr error
			wg      sync.WaitGroup
		)
		work := make(chan struct{}, par)
		go func() {
			defer close(work)
			limit := time.Now().Add(time.Minute)
			going := func() bool {
				_, err := os.Stat(until)
				return until != "" && err != nil && time.Now().Before(limit)
			}
			for i := 0; i < n || going(); i++ {
				work <- struct{}{}
			}
		}()
		for range par {
			wg.Go(func() {
				for range work {
					c, cancel := ctx(r)
					_, err := s.Incr(c, r.FormValue("k"), 1, 0)
					cancel()
					mu.Lock()
					if err != nil {
						rep.Fail++
						lastErr = err
					} else {
						rep.OK++
					}
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		answer(w, r, rep, lastErr)
	})
	// The store works from the hooks on: the agent's before any worker
	// starts, a worker's before it serves. (A Redis that is down is the
	// one failure the cluster starts through.)
	tolerate := func(err error) error {
		if errors.Is(err, store.ErrUnavailable) {
			return nil
		}
		return err
	}
	opts := []framework.Option{
		framework.WithAgent(func(a *agent.Agent) error {
			return tolerate(a.Store().Set(context.Background(), "agent-hook", []byte(strconv.Itoa(os.Getpid())), 0))
		}),
		framework.WithApp(func(a *app.App) error {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			_, err := a.Store().Incr(ctx, "worker-hooks", 1, 0)
			return tolerate(err)
		}),
	}
	if os.Getenv("BROOD_TEST_SYNC") == "1" {
		opts = append(opts, framework.WithStoreSync())
	}
	return framework.Run(r, opts...)
}
