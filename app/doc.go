// Package app is the worker role's API. Each worker process serves the
// application's router; code given to framework.WithApp runs once in every
// worker before it serves, and handlers reach their worker's App through the
// request context:
//
//	func handler(w http.ResponseWriter, r *http.Request) {
//		a := app.FromContext(r.Context())
//		a.Logger().Info("served", "slot", a.Slot())
//	}
//
// Schedules registered with Every and Cron (in a WithApp hook) run in one
// worker per tick or in every worker, on the agent's clock, so that a tick
// happens once per machine whatever the number of workers.
//
// Store is the cluster's shared store (package store): what every worker
// must see alike, such as sessions (store/scsstore) and rate limits
// (store/ratecounter), goes there rather than in a worker's memory.
package app
