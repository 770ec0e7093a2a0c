// Package app is the worker role's API. Each worker process serves the
// application's router; code given to framework.WithApp runs once in every
// worker before it serves, and handlers reach their worker's App through the
// request context:
//
//	func handler(w http.ResponseWriter, r *http.Request) {
//		a := app.FromContext(r.Context())
//		a.Logger().Info("served", "slot", a.Slot())
//	}
package app
