package framework

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strconv"
)

// Run runs the application: in the process the user started it is the
// master, which starts one agent and the workers by re-executing this
// binary, supervises them, and returns when the cluster has stopped. In
// those children, Run plays the agent or worker role and returns when the
// child stops.
//
// Run logs its own errors, so main may simply exit non-zero when it returns
// one. A graceful stop returns nil.
func Run(h http.Handler, opts ...Option) error {
	role := os.Getenv(envRole)
	c, err := resolve(opts, os.Getenv)
	if err != nil {
		slog.New(consoleHandler(os.Stderr, "auto", slog.LevelInfo)).Error(err.Error())
		return err
	}
	slot, _ := strconv.Atoi(os.Getenv(envSlot))
	switch role {
	case "":
		log, err := openLogs(c, "master", 0)
		if err != nil {
			newLogger(c, "master", 0).Error(err.Error())
			return err
		}
		if h == nil {
			err = errors.New("framework.Run: the handler is nil: pass the application's router")
		} else {
			err = runMaster(c, log)
		}
		if err != nil {
			log.Error(err.Error())
		}
		return err
	case "agent", "worker":
		if err := checkMaster(role); err != nil {
			newLogger(c, role, slot).Error(err.Error())
			return err
		}
		log, err := openLogs(c, role, slot)
		if err != nil {
			newLogger(c, role, slot).Error(err.Error())
			return err
		}
		err = runChild(role, h, c, log)
		if err != nil && !errors.Is(err, ErrMasterGone) {
			log.Error(err.Error())
		}
		flushLogs(c, log)
		return err
	default:
		err := fmt.Errorf("%w: BROOD_ROLE=%q is not a role brood sets (agent, worker): unset BROOD_ROLE to start a master", ErrNoMaster, role)
		slog.New(consoleHandler(os.Stderr, "auto", slog.LevelInfo)).Error(err.Error())
		return err
	}
}

func runChild(role string, h http.Handler, c *config, log *slog.Logger) error {
	term := childSignals()
	ch, err := openChannel(c, log)
	if err != nil {
		return err
	}
	if role == "agent" {
		return runAgent(c, log, ch, term)
	}
	return runWorker(h, c, log, ch, term)
}
