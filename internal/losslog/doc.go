// Package losslog reports losses (messages that could not be delivered)
// promptly, each under its own reason, without letting a flood of them
// flood the log: the first loss after a quiet interval is logged at once,
// and those that follow within the interval are summed by reason and action
// and logged when it ends.
package losslog
