package messenger

import (
	"encoding/json"
	"fmt"

	"github.com/broodhq/brood/internal/fleetlink"
)

// BroadcastFleet sends to the agent and every worker of every host of the
// fleet (framework.WithFleet), the sender's host included: at least once to
// every host that is up, in order per sender (package fleet says how). The
// message goes to this host's agent, which alone talks to Redis; data is
// JSON-encoded. Receivers subscribe with On as for Broadcast; the
// message's PID is their own host's agent's. Without a fleet, it is
// Broadcast.
func (m *Messenger) BroadcastFleet(action string, data any) error {
	raw, err := json.Marshal(data)
	if err != nil {
		return fmt.Errorf("broadcast to the fleet %q: encode: %w", action, err)
	}
	return m.SendToAgent(fleetlink.ActBroadcast, fleetlink.Envelope{Action: action, Data: raw})
}
