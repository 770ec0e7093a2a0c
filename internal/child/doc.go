// Package child is a child process's side of its link to the brood master
// that started it: the environment the master set (Env), the channel on
// fd 3 (Link) with the control frames a child answers itself (log
// reopening), the glue between that channel and the process's
// messenger.Messenger, and what both roles share when they stop. The agent's
// runtime (internal/agentproc) and the worker's (internal/worker) are built
// on it; the master's side of the same protocol is internal/master.
package child
