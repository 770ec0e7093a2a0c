package framework

import (
	"errors"
	"fmt"
	"net/http"
	"os"

	"github.com/broodhq/brood/internal/agentproc"
	"github.com/broodhq/brood/internal/child"
	"github.com/broodhq/brood/internal/master"
	"github.com/broodhq/brood/internal/proclog"
	"github.com/broodhq/brood/internal/worker"
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
	env := child.FromEnv(os.Getenv)
	c, err := resolve(opts, os.Getenv)
	if err != nil {
		proclog.Console().Error(err.Error())
		return err
	}
	switch env.Role {
	case "":
		return runMaster(h, c)
	case "agent", "worker":
		return runChild(h, c, env)
	default:
		err := fmt.Errorf("%w: BROOD_ROLE=%q is not a role brood sets (agent, worker): unset BROOD_ROLE to start a master", ErrNoMaster, env.Role)
		proclog.Console().Error(err.Error())
		return err
	}
}

func runMaster(h http.Handler, c *config) error {
	p, err := proclog.Open(c.logSettings(), "master", 0)
	if err != nil {
		proclog.New(c.logSettings(), "master", 0).Error(err.Error())
		return err
	}
	if h == nil {
		err = errors.New("framework.Run: the handler is nil: pass the application's router")
	} else {
		err = master.Run(c.masterConfig(p))
	}
	if err != nil {
		p.Log.Error(err.Error())
	}
	return err
}

func runChild(h http.Handler, c *config, env child.Env) error {
	if err := env.CheckMaster(); err != nil {
		proclog.New(c.logSettings(), env.Role, env.Slot).Error(err.Error())
		return err
	}
	p, err := proclog.Open(c.logSettings(), env.Role, env.Slot)
	if err != nil {
		proclog.New(c.logSettings(), env.Role, env.Slot).Error(err.Error())
		return err
	}
	term := child.Signals()
	link, err := child.Open(child.Config{Env: env, Log: p.Log, MaxMessage: c.maxMessage, ReopenLogs: p.Reopener()})
	if err == nil {
		if env.Role == "agent" {
			err = agentproc.Run(c.agentConfig(p), link, term)
		} else {
			err = worker.Run(c.workerConfig(h, p, env), link, term)
		}
	}
	if err != nil && !errors.Is(err, ErrMasterGone) {
		p.Log.Error(err.Error())
	}
	p.Flush()
	return err
}
