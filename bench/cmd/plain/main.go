// Command plain is the baseline brood is measured against: one ordinary
// net/http process (GOMAXPROCS left at its default, every CPU) serving the
// same chi route as examples/hello, with no middleware.
//
// It listens where examples/hello would: $BROOD_ADDR, else :$PORT, else
// :8080.
package main

import (
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/go-chi/chi/v5"
)

func main() {
	addr := ":8080"
	if p := os.Getenv("PORT"); p != "" {
		addr = ":" + p
	}
	if a := os.Getenv("BROOD_ADDR"); a != "" {
		addr = a
	}

	r := chi.NewRouter()
	r.Get("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "Hello, World!")
	})

	ln, err := net.Listen("tcp", addr)
	if err != nil {
		log.Fatalf("plain: %v", err)
	}
	// The same limits a brood worker sets, so the two differ only in
	// the process model.
	srv := &http.Server{
		Handler:           r,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
	}
	log.Fatal(srv.Serve(ln))
}
