module github.com/broodhq/brood/bench

go 1.26.0

require (
	github.com/broodhq/brood v0.0.0
	github.com/go-chi/chi/v5 v5.5.0
	golang.org/x/sys v0.49.0
)

require (
	github.com/libp2p/go-reuseport v0.4.0 // indirect
	github.com/lmittmann/tint v1.2.1 // indirect
	github.com/robfig/cron/v3 v3.0.1 // indirect
	golang.org/x/net v0.62.0 // indirect
	golang.org/x/term v0.47.0 // indirect
)

replace github.com/broodhq/brood => ../
