package framework

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/broodhq/brood/agent"
	"github.com/broodhq/brood/app"
	"github.com/broodhq/brood/internal/clustertest"
)

// The applications the tests run as real clusters; see clustertest.Main.
var testApps = map[string]func() error{
	"basic": func() error {
		return Run(testRouter(),
			WithAgent(func(a *agent.Agent) error {
				a.Logger().Info("agent hook ran")
				return nil
			}),
			WithApp(func(a *app.App) error {
				a.Logger().Info("app hook ran", "app_slot", a.Slot())
				return nil
			}),
			withRestartMin(20*time.Millisecond))
	},
	"agent-fails": func() error {
		return Run(testRouter(), WithAgent(func(*agent.Agent) error {
			return errors.New("cannot reach the job queue")
		}))
	},
	"worker-crashes": func() error {
		return Run(testRouter(), WithApp(func(a *app.App) error {
			if a.Slot() == 2 {
				os.Exit(7) // a crash, not an error: nothing is reported
			}
			return nil
		}))
	},
	"crash-loop": func() error {
		return Run(testRouter(), withRestartMin(time.Millisecond), WithApp(func(a *app.App) error {
			if os.Getenv("BROOD_TEST_CRASH_ALL") != "" || a.Slot() == 2 {
				if _, err := os.Stat(os.Getenv("BROOD_TEST_CRASH_FLAG")); err == nil {
					os.Exit(9)
				}
			}
			return nil
		}))
	},
}

// exitsCleanly waits up to d for the master to exit 0.
func exitsCleanly(t *testing.T, c *clustertest.Cluster, d time.Duration) {
	t.Helper()
	if err, exited := c.Wait(d); !exited || err != nil {
		t.Fatalf("master: exited=%v err=%v within %s; want exit 0", exited, err, d)
	}
}

// exitsFailing waits up to d for the master to exit non-zero.
func exitsFailing(t *testing.T, c *clustertest.Cluster, d time.Duration) {
	t.Helper()
	if err, exited := c.Wait(d); !exited || err == nil {
		t.Fatalf("master: exited=%v err=%v within %s; want a non-zero exit", exited, err, d)
	}
}

func withRestartMin(d time.Duration) Option {
	return func(c *config) { c.restartMin = d }
}

func testRouter() http.Handler {
	r := chi.NewRouter()
	r.Get("/", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "Hello, World!") })
	r.Get("/pid", func(w http.ResponseWriter, r *http.Request) {
		a := app.FromContext(r.Context())
		fmt.Fprintf(w, "%d %d", os.Getpid(), a.Slot())
	})
	r.Get("/slow", func(w http.ResponseWriter, r *http.Request) {
		ms, _ := strconv.Atoi(r.URL.Query().Get("ms"))
		app.FromContext(r.Context()).Logger().Info("slow request started")
		time.Sleep(time.Duration(ms) * time.Millisecond)
		fmt.Fprint(w, "done")
	})
	r.Get("/panic", func(w http.ResponseWriter, r *http.Request) { panic("handler bug") })
	return r
}

func TestMain(m *testing.M) { clustertest.Main(m, testApps) }
