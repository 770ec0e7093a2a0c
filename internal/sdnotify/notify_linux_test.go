package sdnotify

import (
	"fmt"
	"os"
	"testing"
	"time"
)

func TestAbstractSocket(t *testing.T) {
	addr := fmt.Sprintf("@brood-sdnotify-test-%d-%d", os.Getpid(), time.Now().UnixNano())
	c := receiver(t, addr)
	if err := Ready(); err != nil {
		t.Fatal(err)
	}
	if got := next(t, c); got != "READY=1" {
		t.Errorf("got %q, want READY=1", got)
	}
}
