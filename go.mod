module github.com/broodhq/brood

go 1.26.0

require (
	github.com/go-chi/chi/v5 v5.5.0
	github.com/libp2p/go-reuseport v0.4.0
	github.com/lmittmann/tint v1.2.1
	github.com/robfig/cron/v3 v3.0.1
	golang.org/x/sys v0.49.0
	golang.org/x/term v0.47.0
)

require go.etcd.io/bbolt v1.4.3
