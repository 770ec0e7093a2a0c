// Package messenger carries messages between the processes of a brood
// cluster: egg's messenger (app.messenger, agent.messenger), plus
// request/reply, with nothing lost on the way.
//
// Every process has one Messenger, from agent.Agent.Messenger or
// app.App.Messenger (in a handler: app.FromContext(r.Context()).Messenger()).
// Messages travel over each child's inherited socketpair to the master,
// which routes them; nothing listens on a port or a path.
//
//	call                        delivered to
//	Broadcast(action, data)     the agent and every worker, the sender included
//	SendToApp(action, data)     every worker (from a worker: itself included)
//	SendToAgent(action, data)   the agent (from the agent: itself)
//	SendRandom(action, data)    one worker chosen at random
//	SendTo(pid, action, data)   the process with that pid
//	On / Once(action, fn)       subscribe
//	Handle(action, fn)          answer Call and CallAgent
//
// Data is encoded as JSON (encoding/json); a handler reads it with
// Message.Decode.
//
// # Guarantees
//
// Order: messages from one sender to one receiver arrive in the order they
// were sent, and each receiver runs its On functions one message at a time.
//
// Before the cluster is ready: messages sent before this process learns
// that the whole cluster is ready (from a WithApp or WithAgent hook, say)
// are queued in the sender and sent, in order, when it is; egg drops them.
// The queue holds up to 64 MiB (4× the message size limit if that is more);
// past it, sends fail with ErrBacklog. Calls are not queued (see Call).
// Only ready processes receive: a message sent while a worker is still
// starting does not reach that worker.
//
// While the agent restarts: the master holds what is sent to the agent,
// and hands it to the new agent once that one is ready, which is after its
// WithAgent hooks have registered their handlers. The agent acknowledges
// the messages it has handled, and the master keeps those it has not: if the
// agent dies, they are handed to the next agent first, so a message sent to
// the agent is handled by an agent at least once (a message the dead agent
// handled just before dying, before acknowledging it, is handled again by
// the new one). The hold and the unacknowledged messages are each bounded
// to half of 64 MiB (half of 4× the size limit if that is more); past the
// bound, messages for the agent are refused by the master, which logs a
// warning once per restart and counts them, and calls are answered at once
// with ErrTargetGone. If the agent is not coming back (it crashed too often,
// or the cluster is stopping), what was held is dropped, with a warning.
// Messages for a worker that dies are lost, as in egg, and so are
// messages for a worker whose On functions fall more than 64 MiB behind
// (logged as errors).
//
// Calls: Call and CallAgent always end. They return the handler's answer or
// error, ErrNoHandler, ErrTargetGone (no such process; or it exited, or the
// agent restarted, before replying: the master's membership announcement
// tells the caller at once), or the context's error at its deadline
// (DefaultCallTimeout when it has none). A call the master held for a
// restarting agent goes to the new agent. An agent stopped on purpose (a
// reload replaces it) fails no call: it answers calls while its jobs
// finish; then the master sends it nothing more, it answers what it got
// before running its OnStop hooks, and calls made meanwhile are held for
// the next agent.
//
// Failures: a panic in an On or Handle function is logged with its action
// and the process carries on (a Call gets a *RemoteError). Data over the
// size limit (framework.WithMaxMessageSize, 16 MiB by default) is refused by
// the sender with ErrTooLarge. A malformed frame from a child is logged by
// the master, which resets that child's channel (the child exits and is
// restarted); the master does not crash. A message nobody listens for is
// counted and logged at debug level by its receiver.
//
// # Wire format
//
// A frame is the fixed header of package internal/wire (kind, route, sender
// role and pid, target pid, call id, action) followed by the data. The
// master reads headers only; it never decodes data, and it overwrites the
// sender fields of every frame with what it knows of the child that sent
// it, so a child cannot speak for another.
//
//	kind             route                        call id            data
//	message (2)      agent, app, all, random, pid 0                  JSON
//	call (3)         agent or pid                 the caller's id    JSON
//	reply (4)        pid: the caller              the call's id      JSON
//	reply-error (5)  pid: the caller              the call's id      {"code": ..., "error": ...}
//	ack (6)          master                       messages handled   none
//	control (1)      master ↔ child               0                  JSON, by action
//
// Reply-error codes: "error" (the handler returned an error), "panic",
// "no-handler", "too-large" (the reply was over the limit) and "gone" (no
// such process, no agent, the hold is full, or the target is stopping). Only the
// agent sends acks; the count covers every message it has handled since it
// started. The messenger's control frame is "members", which the master
// sends to a child when it starts and to every child when the ready
// processes change: {"agent": pid or 0, "apps": [pids by slot]}; "cluster-
// ready" releases the queue of messages sent before the cluster was ready.
package messenger
