// Package wire frames the messages that travel between the brood master and
// its children over each child's inherited Unix socketpair.
//
// A frame is a fixed 26-byte header followed by the action name and the data:
//
//	offset size field
//	0      4    length of everything after these 4 bytes (little endian)
//	4      1    kind: control, message, call, reply, reply-error, ack
//	5      1    route: master, agent, app, all, random, pid
//	6      1    sender role: master, agent, app
//	7      1    flags (reserved, zero)
//	8      4    target pid (route pid only)
//	12     4    sender pid (rewritten by the master, so it cannot be forged)
//	16     8    call id (call, reply, reply-error); for ack, a count
//	24     2    length of the action name
//	26     n    action name (UTF-8)
//	26+n   ...  data: JSON by default
//
// The master routes a frame by reading its header only; the data is never
// decoded on the way through, which is what keeps the master off the hot path.
// What the kinds and routes mean to the messenger, and what travels in the
// data of control, reply-error and ack frames, is in package messenger's
// documentation.
package wire
