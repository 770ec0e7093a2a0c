//go:build unix && !linux

package wire

import "syscall"

func read(fd uintptr, p []byte) (int, error)  { return syscall.Read(int(fd), p) }
func write(fd uintptr, p []byte) (int, error) { return syscall.Write(int(fd), p) }

// recvFlags: no atomic close-on-exec here; the reader sets it after.
const recvFlags = 0
