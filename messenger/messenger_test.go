package messenger_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/broodhq/brood/messenger"
)

// A Messenger made outside framework.Run (as in a handler test) registers
// handlers and refuses to send, saying why.
func TestOutsideAClusterSendsFailWithErrNoCluster(t *testing.T) {
	m := messenger.New(messenger.Config{})
	m.On("x", func(messenger.Message) {})
	m.Handle("y", func(context.Context, messenger.Message) (any, error) { return nil, nil })
	for name, err := range map[string]error{
		"Broadcast":   m.Broadcast("x", 1),
		"SendToApp":   m.SendToApp("x", 1),
		"SendToAgent": m.SendToAgent("x", 1),
		"SendRandom":  m.SendRandom("x", 1),
		"SendTo":      m.SendTo(1, "x", 1),
		"Call":        m.Call(context.Background(), 1, "y", 1, nil),
		"CallAgent":   m.CallAgent(context.Background(), "y", 1, nil),
	} {
		if !errors.Is(err, messenger.ErrNoCluster) {
			t.Errorf("%s: %v; want ErrNoCluster", name, err)
		}
	}
	if m.AgentPID() != 0 || len(m.AppPIDs()) != 0 {
		t.Errorf("AgentPID %d, AppPIDs %v outside a cluster; want 0 and none", m.AgentPID(), m.AppPIDs())
	}
}

func TestWrongSetupPanics(t *testing.T) {
	m := messenger.New(messenger.Config{})
	h := func(context.Context, messenger.Message) (any, error) { return nil, nil }
	m.Handle("once-only", h)
	tests := map[string]func(){
		"Handle twice":  func() { m.Handle("once-only", h) },
		"nil Handle fn": func() { m.Handle("z", nil) },
		"nil On fn":     func() { m.On("z", nil) },
	}
	for name, fn := range tests {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Errorf("no panic")
				}
			}()
			fn()
		})
	}
}

func TestDecodeNamesTheMessage(t *testing.T) {
	msg := messenger.Message{Action: "price", Data: json.RawMessage(`"ten"`), From: "app", PID: 42}
	var n int
	err := msg.Decode(&n)
	if err == nil || !strings.Contains(err.Error(), `"price" from app 42`) {
		t.Errorf("Decode into the wrong type: %v; want an error naming the action and sender", err)
	}
	var s string
	if err := msg.Decode(&s); err != nil || s != "ten" {
		t.Errorf("Decode = %q, %v; want ten", s, err)
	}
}

func TestRemoteErrorSaysWhere(t *testing.T) {
	err := error(&messenger.RemoteError{Action: "charge", PID: 7, Panic: true, Msg: "nil map"})
	if got := err.Error(); got != `handler for "charge" in pid 7 panicked: nil map` {
		t.Errorf("got %q", got)
	}
}
