// Package messenger carries messages between the processes of a brood
// cluster: egg's messenger (app.messenger, agent.messenger), plus
// request/reply, with nothing lost on the way.
//
// Every process has one Messenger, from agent.Agent.Messenger or
// app.App.Messenger (in a handler: app.FromContext(r.Context()).Messenger()).
// Between a worker and the agent, messages and calls travel over a direct
// socketpair that the master made for the two of them; what goes from a
// worker to other workers travels over each child's inherited socketpair
// to the master, which routes it. The master stays the authority on who is
// in the cluster. Nothing listens on a port or a path.
//
//	call                        delivered to
//	Broadcast(action, data)     the agent and every worker, the sender included
//	SendToApp(action, data)     every worker (from a worker: itself included)
//	SendToAgent(action, data)   the agent (from the agent: itself)
//	SendRandom(action, data)    one worker chosen at random
//	SendTo(pid, action, data)   the process with that pid
//	On / Once(action, fn)       subscribe
//	Handle(action, fn)          answer Call and CallAgent
//	OnMembers(fn)               learn when the ready processes change
//
// Data is encoded as JSON (encoding/json); a handler reads it with
// Message.Decode. Data that is bytes already (a binary format of its own)
// goes as a Bytes: the same base64 string a []byte makes, written into
// the frame and read back without reflection.
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
// starting does not reach that worker. Each process learns the membership
// from the master, a little apart from the others: the agent may hear
// that a worker is ready a moment after that worker has called it.
//
// While the agent restarts: each worker holds what it sends to the agent,
// and hands it to the new agent once the master passes it the channel to
// that one, which it does once the agent is ready, that is after its
// WithAgent hooks have registered their handlers. The agent acknowledges to
// each worker the messages of that worker it has handled, and the worker
// keeps those it has not: if the agent dies, they are handed to the next
// agent first, so a message sent to the agent is handled by an agent at
// least once (a message the dead agent handled just before dying, before
// acknowledging it, is handled again by the new one). In each worker the
// hold, the unacknowledged messages and the calls not yet answered (kept
// to be handed over) are each bounded to half of 64 MiB (half of 4× the
// size limit if that is more). Past the hold's bound, a
// message for the agent fails with ErrBacklog and a call with
// ErrTargetGone, and the worker logs a warning once per restart. Past the
// bound of unacknowledged messages (an agent that stops reading, or is
// slower than its senders), SendToAgent and the agent's copy of Broadcast
// fail with ErrBacklog until the agent catches up, and past the bound of
// unanswered calls, CallAgent does: a worker's memory for the agent stays
// within the three bounds and its channel's send queue (64 MiB).
// If the agent is not coming back (it crashed too often, or the cluster is
// stopping), the master says so, and each worker drops what it held, with
// a warning, fails the calls among it, and fails later sends to the agent
// with ErrTargetGone.
// Messages for a worker that dies are lost, as in egg, and so are
// messages for a worker whose On functions fall more than 64 MiB behind
// (logged as errors).
//
// Calls: Call and CallAgent always end. They return the handler's answer or
// error, ErrNoHandler, ErrTargetGone (no such process; or it exited, or the
// agent restarted, before replying: the end of the direct channel, or the
// master's membership announcement, tells the caller at once), or the
// context's error at its deadline (DefaultCallTimeout when it has none). A
// call held for a restarting agent goes to the new agent (unless its caller
// gave up meanwhile). An agent stopped on purpose (a reload replaces it)
// fails no call: it answers calls while its jobs finish; then it tells
// every worker to send it nothing more but replies, each confirms, it
// answers what it got before running its OnStop hooks, and calls made
// meanwhile are held by their callers for the next agent.
//
// Handlers: a Handle function's context carries its caller's deadline, and
// ends, with the cause ErrCallerGone, when the caller gives up (its context
// ended: the caller tells the handler's process) or exits; it also ends
// when this process stops. A stopping process waits for running handlers
// until its shutdown timeout, but for handlers whose context has ended it
// waits OrphanWait only, and logs that it did not wait longer: a handler
// that ignores its context cannot hold a reload for the whole timeout.
//
// Where a handler runs: in the agent, a call that came over a worker's
// direct channel, with nothing queued before it, runs on the goroutine
// that reads that channel, which spares a scheduler wake-up per call (a
// good part of a round trip); if it has not returned after 200 µs a new
// goroutine takes over the channel, so a handler that runs long or blocks
// (even on a call back to that worker) holds the frames behind it by about
// a millisecond at most, and a handler that took longer than 20 µs runs in
// goroutines of its own for the next second. Every other call runs in a
// goroutine of its own.
// Replies to a burst of calls read together go out in one write.
//
// Membership: OnMembers says when the ready agent or the ready workers
// change; AgentPID and AppPIDs say who they are now.
//
// A hung agent: with a hang timeout (framework.WithHangTimeout), the agent
// reports its dispatcher's work to the master, which replaces an agent
// whose messages waited for the whole timeout while none was handled (an
// On function deadlocked). Only the dispatcher is stuck, so first the
// master tells the agent ("hung"): it answers every call queued behind the
// stuck On function, which never started, with the reply-error code
// "hand-over", answers every call that arrives from then on the same way,
// tells each worker to hold what it sends next, and confirms; the master
// kills it then, or 500 ms later at the latest. A worker holds a call
// handed back like a call made while the agent restarts (the hold's bound
// applies), so CallAgent returns the new agent's answer, within the
// caller's deadline; in relay mode (BROOD_MESSENGER_RELAY=1) the agent
// hands the calls to the master, which holds them the same way. The
// workers keep what the agent did not acknowledge for the next agent too;
// calls whose handlers had started fail with ErrTargetGone (they may have
// run, and are not run twice), and so does a handed-back call made with
// Call(agentPID), or past the hold's bound. Whoever holds for the agent
// keeps each call's frame until it is answered, for this. Calls run in goroutines of
// their own, so a long one is no hang; an On function that runs long on
// purpose calls Messenger.Progress.
//
// Failures: a panic in an On or Handle function is logged with its action
// and the process carries on (a Call gets a *RemoteError). Data over the
// size limit (framework.WithMaxMessageSize, 16 MiB by default) is refused by
// the sender with ErrTooLarge. A malformed frame from a child is logged by
// the master, which resets that child's channel (the child exits and is
// restarted); the master does not crash. A malformed frame on a direct
// channel is logged by its receiver, which closes that channel only: the
// worker fails its calls in flight on it with ErrTargetGone and holds its
// unacknowledged messages, and the master, asked by the agent, passes the
// two a new channel, over which the worker sends them again. A message
// nobody listens for is counted and logged at debug level by its receiver.
//
// # Wire format
//
// A frame is the fixed header of package internal/wire (kind, route, sender
// role and pid, flags, target pid, call id, action), the caller's deadline
// when the flags say so, then the data. The master reads headers only; it
// never decodes data, and it overwrites the sender fields of every frame
// with what it knows of the child that sent it, so a child cannot speak for
// another; on a direct channel the receiver does the same with what the
// master told it of the other end.
//
//	kind             route                        call id            data
//	message (2)      agent, app, all, random, pid 0                  JSON
//	call (3)         agent or pid                 the caller's id    JSON (flag 1: 8-byte deadline, Unix ns, first)
//	reply (4)        pid: the caller              the call's id      JSON
//	reply-error (5)  pid: the caller              the call's id      {"code": ..., "error": ...}
//	ack (6)          the sender                   messages handled   none
//	cancel (7)       as the call                  the call's id      none: the caller gave up
//	control (1)      master ↔ child, agent ↔ worker 0                JSON, by action
//
// Reply-error codes: "error" (the handler returned an error), "panic",
// "no-handler", "too-large" (the reply was over the limit), "gone" (no
// such process, no agent, the hold is full, or the target is stopping) and
// "hand-over" (a hung agent did not start the call: the worker gives it
// to the next agent; elsewhere it is ErrTargetGone; in relay mode the agent
// sends it to the master, route master, target pid the caller, and the
// master gives the call to the next agent).
// Only the agent sends acks: over a direct channel, the count covers every
// message from that worker it has handled on that channel; to the master
// (relay mode), every message it has handled since it started.
//
// Direct channels: for every live worker and the ready agent, the master
// makes a Unix stream socketpair and sends one end to each over its
// channel, as SCM_RIGHTS ancillary data on the first byte of a control
// frame "direct" whose data is {"peer": the pid at the other end}. It does
// so when the agent becomes ready (for every live worker, before the
// membership that names the agent), and when a worker starts while an
// agent is ready; a worker starting while the agent restarts gets its
// channel with the others when the next agent is ready. The agent sends
// the master "direct-reset" {"peer": pid} when its channel to a live
// worker ended, and the master makes them a new pair. At its stop the agent
// sends "draining" on each direct channel; the worker answers "drained",
// after which it sends nothing on that channel but replies. A hung agent
// sends "hung" on each direct channel: the worker holds what it sends to
// the agent from then on. The frames on a direct channel are the same as
// on a child's channel to the master.
//
// The messenger's control frame from the master is "members", which the
// master sends to a child when it starts and to every child when the ready
// processes change: {"agent": pid or 0, "apps": [pids by slot],
// "agent_gone": true when no agent is coming, "relay": true when the master
// still carries the agent's traffic}; "cluster-ready" releases the queue of
// messages sent before the cluster was ready; "hung" (master → agent, no
// data) says the agent is found hung, and the agent answers "hung"
// {"calls": how many it handed back} once it has. With BROOD_MESSENGER_RELAY=1
// in the master's environment it makes no direct channels and routes
// everything, as brood did before them: a way to compare the two.
package messenger
