package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Kind says what a frame is for.
type Kind uint8

// Frame kinds.
const (
	KindControl    Kind = 1 // lifecycle between master and child: ready, stop, ...
	KindMessage    Kind = 2 // a user message (messenger.Broadcast and friends)
	KindCall       Kind = 3 // a request that expects a reply
	KindReply      Kind = 4 // the answer to a call
	KindReplyError Kind = 5 // a call that failed; Data is the error text
	KindAck        Kind = 6 // agent → sender: CallID counts the messages it has handled
	KindCancel     Kind = 7 // caller → handler: the caller of call CallID gave up
)

// Flags of a frame's header.
const (
	// FlagDeadline: 8 bytes after the action hold the caller's deadline, in
	// Unix nanoseconds (a call only).
	FlagDeadline uint8 = 1
)

// Route says where the master delivers a frame.
type Route uint8

// Routes.
const (
	ToMaster Route = 0
	ToAgent  Route = 1
	ToApp    Route = 2 // every worker
	ToAll    Route = 3 // the agent and every worker
	ToRandom Route = 4 // one worker
	ToPID    Route = 5
)

// Role is the sender's role.
type Role uint8

// Roles.
const (
	RoleMaster Role = 0
	RoleAgent  Role = 1
	RoleApp    Role = 2
)

func (r Role) String() string {
	switch r {
	case RoleMaster:
		return "master"
	case RoleAgent:
		return "agent"
	case RoleApp:
		return "app"
	}
	return fmt.Sprintf("role(%d)", uint8(r))
}

// HeaderLen is the size of the fixed header, length prefix included.
const HeaderLen = 26

// MaxAction bounds action names; they are routing keys, not payloads.
const MaxAction = 1024

// ErrMalformed is returned for a frame whose header cannot be trusted.
var ErrMalformed = errors.New("malformed frame")

// Frame is a decoded frame. Data aliases the raw bytes it was parsed from.
type Frame struct {
	Kind    Kind
	Route   Route
	From    Role
	ToPID   int
	FromPID int
	CallID  uint64
	Action  string
	// Deadline is the caller's deadline in Unix nanoseconds, 0 for none; it
	// travels only on calls (FlagDeadline).
	Deadline int64
	Data     []byte
}

// Size is the encoded size of f.
func (f *Frame) Size() int { return f.HeadSize() + len(f.Data) }

// HeadSize is the encoded size of f without its data.
func (f *Frame) HeadSize() int {
	n := HeaderLen + len(f.Action)
	if f.Deadline != 0 {
		n += 8
	}
	return n
}

// Append encodes f onto b.
func (f *Frame) Append(b []byte) []byte {
	return append(f.AppendHead(b, len(f.Data)), f.Data...)
}

// AppendHead encodes f onto b up to its data, for a frame of dataLen bytes
// of data that the caller appends next (f.Data is not used): data encoded
// straight into the frame is copied once.
func (f *Frame) AppendHead(b []byte, dataLen int) []byte {
	n := f.HeadSize() + dataLen
	b = binary.LittleEndian.AppendUint32(b, uint32(n-4))
	var flags uint8
	if f.Deadline != 0 {
		flags |= FlagDeadline
	}
	b = append(b, byte(f.Kind), byte(f.Route), byte(f.From), flags)
	b = binary.LittleEndian.AppendUint32(b, uint32(f.ToPID))
	b = binary.LittleEndian.AppendUint32(b, uint32(f.FromPID))
	b = binary.LittleEndian.AppendUint64(b, f.CallID)
	b = binary.LittleEndian.AppendUint16(b, uint16(len(f.Action)))
	b = append(b, f.Action...)
	if f.Deadline != 0 {
		b = binary.LittleEndian.AppendUint64(b, uint64(f.Deadline))
	}
	return b
}

// Encode returns f as a new raw frame.
func (f *Frame) Encode() []byte { return f.Append(make([]byte, 0, f.Size())) }

// Parse decodes a raw frame as returned by Conn.Read. Data aliases raw.
func Parse(raw []byte) (Frame, error) {
	if len(raw) < HeaderLen || int(binary.LittleEndian.Uint32(raw)) != len(raw)-4 {
		return Frame{}, fmt.Errorf("%w: %d bytes do not hold a header", ErrMalformed, len(raw))
	}
	al := int(binary.LittleEndian.Uint16(raw[24:]))
	if al > MaxAction || HeaderLen+al > len(raw) {
		return Frame{}, fmt.Errorf("%w: action length %d exceeds the frame", ErrMalformed, al)
	}
	f := Frame{
		Kind:    Kind(raw[4]),
		Route:   Route(raw[5]),
		From:    Role(raw[6]),
		ToPID:   int(binary.LittleEndian.Uint32(raw[8:])),
		FromPID: int(binary.LittleEndian.Uint32(raw[12:])),
		CallID:  binary.LittleEndian.Uint64(raw[16:]),
		Action:  string(raw[HeaderLen : HeaderLen+al]),
	}
	rest := raw[HeaderLen+al:]
	if raw[7]&FlagDeadline != 0 {
		if len(rest) < 8 {
			return Frame{}, fmt.Errorf("%w: deadline flag without a deadline", ErrMalformed)
		}
		f.Deadline = int64(binary.LittleEndian.Uint64(rest))
		rest = rest[8:]
	}
	f.Data = rest
	if f.Kind < KindControl || f.Kind > KindCancel || f.Route > ToPID || f.From > RoleApp {
		return Frame{}, fmt.Errorf("%w: kind %d route %d role %d", ErrMalformed, f.Kind, f.Route, f.From)
	}
	return f, nil
}

// Header accessors read a raw frame without decoding it: the master's
// routing path uses them so that it never copies the action or the data.

// RouteOf returns the route of a raw frame that Parse accepted.
func RouteOf(raw []byte) Route { return Route(raw[5]) }

// KindOf returns the kind of a raw frame.
func KindOf(raw []byte) Kind { return Kind(raw[4]) }

// ToPIDOf returns the target pid of a raw frame.
func ToPIDOf(raw []byte) int { return int(binary.LittleEndian.Uint32(raw[8:])) }

// FromPIDOf returns the sender pid of a raw frame.
func FromPIDOf(raw []byte) int { return int(binary.LittleEndian.Uint32(raw[12:])) }

// FromOf returns the sender role of a raw frame.
func FromOf(raw []byte) Role { return Role(raw[6]) }

// CallIDOf returns the call id of a raw frame (for an ack, its count).
func CallIDOf(raw []byte) uint64 { return binary.LittleEndian.Uint64(raw[16:]) }

// SetSender overwrites the sender fields of a raw frame in place; the master
// does this for every frame it reads so that a child cannot speak for another.
func SetSender(raw []byte, role Role, pid int) {
	raw[6] = byte(role)
	binary.LittleEndian.PutUint32(raw[12:], uint32(pid))
}

// SetRoute overwrites the route of a raw frame in place.
func SetRoute(raw []byte, r Route) { raw[5] = byte(r) }
