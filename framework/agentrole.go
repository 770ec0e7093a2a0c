package framework

import (
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/broodhq/brood/agent"
	"github.com/broodhq/brood/internal/lifecycle"
)

func runAgent(c *config, log *slog.Logger, ch *channel, term chan os.Signal) error {
	hooks := lifecycle.New(log)
	a := agent.New(agent.Config{Logger: log, Hooks: hooks})
	for _, hook := range c.agentHooks {
		if err := hook(a); err != nil {
			return ch.bootFailed(fmt.Errorf("agent: WithAgent hook: %w", err))
		}
	}
	ch.send(control(ctlReady, nil))

	timeout, err := ch.waitStop(c, term, hooks.Ready, nil)
	if err != nil {
		return err
	}
	ctx, cancel := stopContext(timeout)
	defer cancel()
	if err := hooks.Stop(ctx); err != nil {
		log.Error("OnStop hook failed", "err", err)
	}
	ch.conn.Close(time.Second)
	return nil
}
