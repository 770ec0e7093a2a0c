package master

import "github.com/broodhq/brood/internal/sdnotify"

// The master tells a service manager about its state when one asked
// ($NOTIFY_SOCKET, as systemd's Type=notify and notify-reload units do);
// children never see the socket (childEnv drops it).

func (m *master) notifyReady() {
	if err := sdnotify.Ready(); err != nil {
		m.log.Warn("sd_notify READY failed", "err", err)
	}
}

func (m *master) notifyReloading() {
	if err := sdnotify.Reloading(); err != nil {
		m.log.Warn("sd_notify RELOADING failed", "err", err)
	}
}

func (m *master) notifyStopping() {
	if err := sdnotify.Stopping(); err != nil {
		m.log.Warn("sd_notify STOPPING failed", "err", err)
	}
}
