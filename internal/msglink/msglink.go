package msglink

import (
	"context"
	"time"

	"github.com/broodhq/brood/internal/wire"
)

// CtlMembers is the control action the master sends to every child whenever
// the set of ready processes changes, and to each child as it starts. Its
// data is a JSON Members.
const CtlMembers = "members"

// Members is who can receive messages: the ready agent and workers.
type Members struct {
	Agent int   `json:"agent"` // 0 while there is no ready agent
	Apps  []int `json:"apps"`  // ready workers, by slot
	// AgentGone: there is no agent and none is coming (it crashed too
	// often, or the cluster stops); what workers hold for it is dropped.
	AgentGone bool `json:"agent_gone,omitempty"`
	// Relay: traffic between workers and the agent goes through the master
	// (the old route, kept for benchmarks: BROOD_MESSENGER_RELAY=1), not
	// over direct channels.
	Relay bool `json:"relay,omitempty"`
}

// Control actions of the direct channels (messenger/doc.go, wire format).
const (
	// CtlDirect: master → child, with one end of a new socketpair passed
	// as SCM_RIGHTS; its data is a Direct.
	CtlDirect = "direct"
	// CtlDirectReset: agent → master, the direct channel to a live worker
	// was reset (a malformed frame, a read error); its data is a Direct
	// naming the worker. The master makes them a new pair.
	CtlDirectReset = "direct-reset"
	// CtlDraining: agent → worker over their direct channel, the agent is
	// stopping: send it nothing more but replies and hold what is new.
	CtlDraining = "draining"
	// CtlDrained: worker → agent, the answer to CtlDraining: nothing
	// follows it but replies.
	CtlDrained = "drained"
	// CtlHung: master → agent, over their channel, before it kills the
	// agent as hung: answer every call still queued for the stuck
	// dispatcher with CodeHandOver. Agent → worker, over their direct
	// channel: hold what is new for the next agent. Agent → master: done
	// (its data a Hung); the master kills it at once rather than after
	// HungGrace.
	CtlHung = "hung"
)

// HungGrace bounds how long the master waits for a hung agent to confirm
// CtlHung before it kills it.
const HungGrace = 500 * time.Millisecond

// Hung is the data of the agent's answer to CtlHung.
type Hung struct {
	Calls int `json:"calls"` // calls answered with CodeHandOver
}

// Direct is the data of CtlDirect and CtlDirectReset.
type Direct struct {
	Peer int `json:"peer"` // the pid at the other end
}

// Endpoint is the messenger's side of a Link.
type Endpoint interface {
	// Deliver hands over a frame other than a control frame. The channel's
	// one reader goroutine calls it, in the order frames arrived; it must
	// not block, because replies and control frames share that reader.
	Deliver(f wire.Frame)
	// Members announces a new membership.
	Members(m Members)
	// Work is what the hang detection watches: frames queued or being
	// handled, and a count that moves whenever one is done.
	Work() (inFlight int64, progress uint64)
	// Peer hands over a direct channel to pid (CtlDirect); the Messenger
	// reads it and closes it.
	Peer(pid int, conn *wire.Conn)
	// ClusterReady says the whole cluster is ready: messages queued until
	// now are sent, in order.
	ClusterReady()
	// Drain stops taking calls and messages (a call delivered later is
	// answered as by a stopping process) and waits, until ctx ends, for
	// those taken to be handled; sends still work. The agent drains before
	// its OnStop hooks run, so that calls it accepted are answered while
	// what their handlers use is still open.
	Drain(ctx context.Context) error
	// HandOver is the master's word that this agent is hung (CtlHung):
	// every call that waits for the stuck dispatcher, and every call
	// delivered from now on, is answered with CodeHandOver rather than
	// started, and the master is told (CtlHung). The reader calls it.
	HandOver()
	// Close fails pending calls, refuses further sends and waits, until ctx
	// ends, for running handlers. It may be called more than once.
	Close(ctx context.Context) error
}

// Link is what the framework gives messenger.New.
type Link struct {
	Conn     *wire.Conn // the channel to the master
	Role     wire.Role  // this process's role
	Endpoint Endpoint   // set by messenger.New
}

// ReplyError is the data of a reply-error frame. The master sends one to fail
// a call it cannot deliver, so both sides need the format.
type ReplyError struct {
	Code  string `json:"code"` // one of the Code constants
	Error string `json:"error"`
}

// Codes of a ReplyError.
const (
	CodeError     = "error"      // the handler returned an error
	CodePanic     = "panic"      // the handler panicked
	CodeNoHandler = "no-handler" // the target has no handler for the action
	CodeGone      = "gone"       // no such target, or it exited (sent by the master)
	CodeTooLarge  = "too-large"  // the reply was over the size limit
	// CodeHandOver: the agent is hung and did not start the call; the
	// caller gives it to the next agent (a worker holds it as for a
	// restarting agent; where it cannot, it is ErrTargetGone). In relay
	// mode the agent sends it to the master (route ToMaster, ToPID the
	// caller), which holds the call.
	CodeHandOver = "hand-over"
)
