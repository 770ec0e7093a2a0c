// Package lifecycle holds the ready and stop hooks that the agent and app
// roles expose to users, and runs them for the framework, turning a panic
// in a hook into a logged error.
package lifecycle
