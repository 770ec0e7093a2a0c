package protocol

// Worker-side schedules (app.App.Every and Cron) run on the agent's clock,
// through the messenger:
//
//	worker → agent  Call  brood.schedule.register  []workerjobs.Spec → RegisterReply
//	agent → worker  Call  brood.schedule.run       RunMsg → nil or the job's error
//	agent → workers SendToApp brood.schedule.hello  nil: announce your schedules
//
// Each worker announces its schedules when it starts and again when a new
// agent says hello (the agent that scheduled them may have died).
const (
	ActScheduleRegister = "brood.schedule.register"
	ActScheduleRun      = "brood.schedule.run"
	ActScheduleHello    = "brood.schedule.hello"
)

// RunMsg asks a worker to run one tick of its schedule Name.
type RunMsg struct {
	Name string `json:"name"`
	Tick uint64 `json:"tick"`
}

// RegisterReply answers a worker's announcement of its schedules.
type RegisterReply struct {
	// Conflicts names the schedules the agent did not take from this
	// worker, and why.
	Conflicts []string `json:"conflicts,omitempty"`
}
