// Package protocol is what a brood master and its children say to each
// other over a child's channel (internal/wire frames on fd 3): the
// environment and descriptors a child is started with, the control actions
// and their typed messages, and one decoding policy (Decode) for all of
// them. Both sides import it; neither side's code lives here.
package protocol
