// Package msglink joins a messenger.Messenger to the framework's channel to
// the master. The calls only the framework may make (hand over a frame,
// announce the membership, say the cluster is ready, close) live here rather
// than as methods of the public Messenger, so users cannot reach them.
package msglink
