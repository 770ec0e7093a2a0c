package reuseport

import (
	"os"

	"golang.org/x/net/bpf"
)

// AttachShared attaches to member's reuseport group a program that gives
// every new connection to the socket at index, the group's shared socket
// (see Group.EnableShared). Like the sticky program it belongs to the whole
// group and replaces the one attached before.
func AttachShared(member *os.File, index int) error {
	return attach(member, []bpf.Instruction{bpf.RetConstant{Val: uint32(index)}}, "shared")
}

// SharedAvailable returns nil where EnableShared can work: on Linux.
func SharedAvailable() error { return nil }
