//go:build unix

package control

import (
	"os"
	"syscall"
)

// maxPathLen leaves room for the terminating NUL that C tools (socat, nc)
// expect, though Linux would take one byte more.
var maxPathLen = len(syscall.RawSockaddrUnix{}.Path) - 1

func owner(fi os.FileInfo) (int, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, false
	}
	return int(st.Uid), true
}
