// Package agentproc is the runtime of the agent process, the cluster's
// singleton: it runs the WithAgent hooks, the agent's scheduled jobs and the
// workers' schedules on one clock (appjobs.go), answers the master's
// questions about those jobs, and rotates the cluster's log files
// (rotate.go). framework.Run calls Run in a process the master started as
// the agent.
package agentproc
