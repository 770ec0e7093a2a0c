// Command sessions is a login that every worker sees and that survives
// kill -9 of any process: scs sessions kept in the cluster's store, which
// lives in the agent's database (store/scsstore), with login attempts
// limited across the cluster (store/ratecounter).
//
//	go run ./examples/sessions
//	curl -c jar -b jar 'localhost:8080/login?user=alice'
//	curl -b jar localhost:8080/me             # any worker: alice
//	kill -9 <agent or worker pid>             # still alice
//	kill -9 <master pid>; go run ./examples/sessions; curl -b jar localhost:8080/me
//
// The data lives in $BROOD_DATA_DIR (default ~/.local/state/brood/sessions);
// with $BROOD_STORE=redis://127.0.0.1:6379/0 it lives in Redis instead.
package main

import (
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/alexedwards/scs/v2"
	"github.com/go-chi/chi/v5"
	"github.com/go-chi/httprate"

	"github.com/broodhq/brood/app"
	"github.com/broodhq/brood/framework"
	"github.com/broodhq/brood/store/ratecounter"
	_ "github.com/broodhq/brood/store/redisstore" // $BROOD_STORE=redis://...
	"github.com/broodhq/brood/store/scsstore"
)

func main() {
	sessions := scs.New()
	sessions.Lifetime = 24 * time.Hour

	r := chi.NewRouter()
	r.Use(sessions.LoadAndSave)
	r.Get("/me", func(w http.ResponseWriter, r *http.Request) {
		a := app.FromContext(r.Context())
		user := sessions.GetString(r.Context(), "user")
		if user == "" {
			http.Error(w, "not logged in: /login?user=NAME", http.StatusUnauthorized)
			return
		}
		// A counter for the whole cluster, in the same store.
		n, err := a.Store().Incr(r.Context(), "visits:"+user, 1, 0)
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintf(w, "%s (visit %d), served by worker %d, pid %d\n", user, n, a.Slot(), a.PID())
	})
	r.Get("/logout", func(w http.ResponseWriter, r *http.Request) {
		if err := sessions.Destroy(r.Context()); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		fmt.Fprintln(w, "bye")
	})

	err := framework.Run(r, framework.WithName("sessions"), framework.WithApp(func(a *app.App) error {
		// The store is there from the WithApp hook on.
		sessions.Store = scsstore.New(a.Store())
		// Five login attempts a minute per client for the whole cluster,
		// decided by one atomic increment each.
		limit := ratecounter.NewLimiter(a.Store(), 5, time.Minute).Handler(httprate.KeyByIP)
		r.With(limit).Get("/login", func(w http.ResponseWriter, r *http.Request) {
			user := r.FormValue("user")
			if user == "" {
				http.Error(w, "want ?user=NAME", http.StatusBadRequest)
				return
			}
			// A new token on login, against session fixation.
			if err := sessions.RenewToken(r.Context()); err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			sessions.Put(r.Context(), "user", user)
			fmt.Fprintf(w, "logged in as %s\n", user)
		})
		return nil
	}))
	if err != nil {
		os.Exit(1)
	}
}
