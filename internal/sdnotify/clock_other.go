//go:build !linux

package sdnotify

// monotonicUsec is only needed by systemd, which only runs on Linux;
// Reloading sends RELOADING=1 alone elsewhere.
func monotonicUsec() (int64, bool) { return 0, false }
