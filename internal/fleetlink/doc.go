// Package fleetlink is the seam between the agent runtime and package
// fleet: the agent runtime and package agent use the Fleet interface, and
// package fleet, which links go-redis, registers the opener when an
// application imports it. An application without a fleet links no Redis
// client.
//
// It also holds what both sides share: the fencing epoch in a job's
// context and the reserved message action by which a worker's
// BroadcastFleet reaches its agent.
package fleetlink
