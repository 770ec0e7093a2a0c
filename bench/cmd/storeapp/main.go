// Command storeapp is the application cmd/storebench measures, in one of
// two builds of the same handlers, chosen by $STOREAPP:
//
//	brood  brood (2 workers by default), the router served bare
//	       (WithMiddleware()), the cluster's store in the agent
//	redis  one plain net/http + chi process whose store is Redis at
//	       $STOREAPP_REDIS (go-redis for INCR, scs's redisstore over
//	       redigo for sessions), as an application does without brood
//	broodredis
//	       brood as in "brood", the store Redis as in "redis": the same
//	       brood application with its state in Redis instead of the agent
//
// Handlers:
//
//	GET /incr     one Incr (brood) or INCR (redis) of "visits"
//	GET /session  scs LoadAndSave: reads the session's counter, writes it
//	              back plus one (a new session without a cookie)
//	GET /get?k=K  (brood) the value of K in the store, 404 if absent
//	GET /         200, for readiness
//
// With $STOREAPP_PROFILE=DIR, every brood process writes a CPU profile to
// DIR/ROLE-PID.pprof when it stops, the Redis peer to DIR/redispeer-PID.pprof.
package main

import (
	"cmp"
	"context"
	"fmt"
	"log"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"syscall"
	"time"

	"github.com/alexedwards/scs/redisstore"
	"github.com/alexedwards/scs/v2"
	"github.com/go-chi/chi/v5"
	"github.com/gomodule/redigo/redis"
	goredis "github.com/redis/go-redis/v9"

	"github.com/broodhq/brood/app"
	"github.com/broodhq/brood/framework"
	"github.com/broodhq/brood/store/scsstore"
)

func main() {
	sessions := scs.New()
	sessions.Lifetime = time.Hour
	r := chi.NewRouter()
	r.Get("/", func(w http.ResponseWriter, r *http.Request) {})
	r.With(sessions.LoadAndSave).Get("/session", func(w http.ResponseWriter, r *http.Request) {
		n := sessions.GetInt(r.Context(), "n") + 1
		sessions.Put(r.Context(), "n", n)
		fmt.Fprint(w, n)
	})

	switch mode := os.Getenv("STOREAPP"); mode {
	case "brood", "broodredis":
		if dir := os.Getenv("STOREAPP_PROFILE"); dir != "" {
			role := cmp.Or(os.Getenv("BROOD_ROLE"), "master")
			if mode == "broodredis" {
				role = mode + "-" + role
			}
			f, err := os.Create(filepath.Join(dir, fmt.Sprintf("%s-%d.pprof", role, os.Getpid())))
			if err == nil && pprof.StartCPUProfile(f) == nil {
				defer pprof.StopCPUProfile()
			}
		}
		if mode == "broodredis" {
			serveRedis(r, sessions, os.Getenv("STOREAPP_REDIS"))
			if err := framework.Run(r, framework.WithMiddleware()); err != nil {
				pprof.StopCPUProfile()
				os.Exit(1)
			}
			return
		}
		r.Get("/incr", func(w http.ResponseWriter, r *http.Request) {
			n, err := app.FromContext(r.Context()).Store().Incr(r.Context(), "visits", 1, 0)
			if err != nil {
				http.Error(w, err.Error(), http.StatusServiceUnavailable)
				return
			}
			w.Write(strconv.AppendInt(nil, n, 10))
		})
		r.Get("/get", func(w http.ResponseWriter, r *http.Request) {
			v, ok, err := app.FromContext(r.Context()).Store().Get(r.Context(), r.FormValue("k"))
			switch {
			case err != nil:
				http.Error(w, err.Error(), http.StatusServiceUnavailable)
			case !ok:
				http.NotFound(w, r)
			default:
				w.Write(v)
			}
		})
		err := framework.Run(r, framework.WithMiddleware(), framework.WithApp(func(a *app.App) error {
			sessions.Store = scsstore.New(a.Store())
			return nil
		}))
		if err != nil {
			pprof.StopCPUProfile()
			os.Exit(1)
		}
	case "redis":
		addr := os.Getenv("STOREAPP_REDIS")
		rdb := serveRedis(r, sessions, addr)
		if dir := os.Getenv("STOREAPP_PROFILE"); dir != "" {
			profileUntilSignal(filepath.Join(dir, fmt.Sprintf("redispeer-%d.pprof", os.Getpid())))
		}
		listen := os.Getenv("BROOD_ADDR")
		srv := &http.Server{Addr: listen, Handler: r, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second}
		if err := rdb.Ping(context.Background()).Err(); err != nil {
			log.Fatalf("redis at %s: %v", addr, err)
		}
		log.Fatal(srv.ListenAndServe())
	default:
		log.Fatal("set STOREAPP to brood or redis")
	}
}

// serveRedis routes /incr to Redis at addr (go-redis) and keeps sessions
// there (scs's redisstore over redigo); the clients dial when first used.
func serveRedis(r chi.Router, sessions *scs.SessionManager, addr string) *goredis.Client {
	rdb := goredis.NewClient(&goredis.Options{Addr: addr, PoolSize: 64})
	r.Get("/incr", func(w http.ResponseWriter, r *http.Request) {
		n, err := rdb.Incr(r.Context(), "visits").Result()
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		w.Write(strconv.AppendInt(nil, n, 10))
	})
	pool := &redis.Pool{MaxIdle: 64, IdleTimeout: time.Minute, Dial: func() (redis.Conn, error) { return redis.Dial("tcp", addr) }}
	sessions.Store = redisstore.New(pool)
	return rdb
}

// profileUntilSignal writes a CPU profile to path until SIGTERM or SIGINT,
// then exits: the Redis peer has no framework to stop it in order.
func profileUntilSignal(path string) {
	f, err := os.Create(path)
	if err != nil || pprof.StartCPUProfile(f) != nil {
		return
	}
	c := make(chan os.Signal, 1)
	signal.Notify(c, syscall.SIGTERM, os.Interrupt)
	go func() {
		<-c
		pprof.StopCPUProfile()
		f.Close()
		os.Exit(0)
	}()
}
