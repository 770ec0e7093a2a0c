// Package agent is the agent role's API. The agent is the one process of a
// brood cluster that runs work which must happen once per machine rather than
// once per worker: scheduled jobs, log rotation, holding one connection to an
// outside system, answering workers' requests. It serves no HTTP traffic.
// Code given to framework.WithAgent runs only in the agent, before the
// workers start. The agent holds the cluster's store (Store, package store),
// which the workers reach through it.
package agent
