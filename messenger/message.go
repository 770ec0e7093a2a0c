package messenger

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/broodhq/brood/internal/msglink"
	"github.com/broodhq/brood/internal/wire"
)

// Message is one message as a handler receives it.
type Message struct {
	Action string
	Data   json.RawMessage // the data as the sender encoded it: JSON
	From   string          // the sender's role: "master", "agent" or "app"
	PID    int             // the sender's pid, as the master saw it
}

// Decode unmarshals the message's data into v.
func (m Message) Decode(v any) error {
	if err := decodeData(m.Data, v); err != nil {
		return fmt.Errorf("decode message %q from %s %d: %w", m.Action, m.From, m.PID, err)
	}
	return nil
}

// Errors that callers branch on.
var (
	// ErrTooLarge: the encoded data is over the size limit
	// (framework.WithMaxMessageSize, 16 MiB by default). Nothing was sent.
	ErrTooLarge = wire.ErrTooLarge
	// ErrBacklog: the queue of messages waiting for the cluster to be ready,
	// or the channel to the master, is full. Nothing was sent.
	ErrBacklog = wire.ErrBacklog
	// ErrNoCluster: the Messenger is not part of a brood cluster (one made by
	// app.New or agent.New outside framework.Run, as in handler tests).
	ErrNoCluster = errors.New("not running in a brood cluster")
	// ErrClosed: the process is stopping, or its master went away.
	ErrClosed = errors.New("messenger closed")
	// ErrNoHandler: the target has no Handle for the action of a Call.
	ErrNoHandler = errors.New("no handler for this action")
	// ErrTargetGone: the target of a Call does not exist, exited, or
	// restarted before it replied. A call that failed this way may or may
	// not have run.
	ErrTargetGone = errors.New("target process is gone")
)

// RemoteError is the error a Handle function returned, or its panic, as the
// caller of Call receives it.
type RemoteError struct {
	Action string
	PID    int  // the process whose handler failed
	Panic  bool // the handler panicked
	Msg    string
}

func (e *RemoteError) Error() string {
	what := "failed"
	if e.Panic {
		what = "panicked"
	}
	return fmt.Sprintf("handler for %q in pid %d %s: %s", e.Action, e.PID, what, e.Msg)
}

// callError turns a reply-error frame into the error Call returns.
func callError(action, target string, from int, data []byte) error {
	var re msglink.ReplyError
	if err := json.Unmarshal(data, &re); err != nil {
		re = msglink.ReplyError{Code: msglink.CodeError, Error: string(data)}
	}
	switch re.Code {
	case msglink.CodeNoHandler:
		return fmt.Errorf("call %q to %s: %w", action, target, ErrNoHandler)
	case msglink.CodeGone, msglink.CodeHandOver:
		return fmt.Errorf("call %q to %s: %w: %s", action, target, ErrTargetGone, re.Error)
	case msglink.CodeTooLarge:
		return fmt.Errorf("call %q to %s: reply: %w: %s", action, target, ErrTooLarge, re.Error)
	}
	return fmt.Errorf("call %q to %s: %w", action, target,
		&RemoteError{Action: action, PID: from, Panic: re.Code == msglink.CodePanic, Msg: re.Error})
}
