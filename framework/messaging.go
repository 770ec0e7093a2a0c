package framework

import (
	"fmt"
	"strconv"
)

// Bounds of WithMaxMessageSize. The frame's length field has 32 bits, and
// a limit under a kilobyte would refuse ordinary messages.
const (
	MinMessageSize = 1 << 10
	MaxMessageSize = 1 << 30
)

// WithMaxMessageSize bounds the encoded data of one message, call or reply
// (default 16 MiB). A larger one is refused by its sender with
// messenger.ErrTooLarge; a frame over the limit from a child is treated as
// malformed and resets that child's channel.
func WithMaxMessageSize(n int) Option {
	return func(c *config) { c.maxMessage = n; c.source["max_message"] = "code" }
}

func (c *config) validateMessaging() []error {
	if c.source["max_message"] == "" {
		return nil
	}
	if c.maxMessage < MinMessageSize || c.maxMessage > MaxMessageSize {
		return []error{&ConfigError{"WithMaxMessageSize", strconv.Itoa(c.maxMessage),
			fmt.Sprintf("want a size in bytes from %d (1 KiB) to %d (1 GiB)", MinMessageSize, MaxMessageSize), nil}}
	}
	return nil
}
