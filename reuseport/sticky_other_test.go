//go:build !linux

package reuseport

import (
	"context"
	"errors"
	"testing"
)

func TestStickyIsRefusedWithoutReuseportFilters(t *testing.T) {
	g, err := Bind(context.Background(), "127.0.0.1:0", 2)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if err := g.EnableSticky(); !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("EnableSticky: %v; want an error wrapping errors.ErrUnsupported", err)
	}
	if g.Sticky() != nil {
		t.Error("the group keeps a sticky table after refusing sticky")
	}
}
