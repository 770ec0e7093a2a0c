package framework

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/broodhq/brood/reuseport"
)

// The balancing policies WithBalance accepts.
const (
	// BalanceHash leaves the choice of a worker to the kernel's hash of
	// each connection's addresses and ports: even, and load-blind. The
	// default.
	BalanceHash = "hash"
	// BalanceSticky sends every connection of a client address to the
	// same worker slot, chosen in the kernel by a reuseport BPF program
	// (Linux only): what in-process sessions and websockets that
	// reconnect need. A crash or a rolling reload moves no client; adding
	// or removing a worker moves about 1/N of them. Behind a proxy or a
	// NAT the address is the proxy's or the NAT's, and all its clients
	// share a slot: keep sessions in the cluster's store instead.
	BalanceSticky = "sticky"
	// BalanceShared puts every new connection in one accept queue that
	// every worker serves (Linux only): a worker busy on a request does
	// not take the next connection while an idle one could. Each worker
	// accepts while it holds fewer than its fair share of the cluster's
	// connections, which the master derives from the workers' heartbeats,
	// so that clients keeping their connections open are spread too.
	BalanceShared = "shared"
)

var balancePolicies = []string{BalanceHash, BalanceSticky, BalanceShared}

// WithBalance sets how new connections are spread across the workers:
// BalanceHash ("hash", the default), BalanceSticky ("sticky") or
// BalanceShared ("shared").
// Overridden by $BROOD_BALANCE.
func WithBalance(policy string) Option {
	return func(c *config) { c.balance = policy; c.source["balance"] = "code" }
}

// balancePolicy is the effective policy: the zero value is the default.
func (c *config) balancePolicy() string {
	if c.balance == "" {
		return BalanceHash
	}
	return c.balance
}

func (c *config) validateBalance(name func(key, opt string) string) []error {
	switch c.balancePolicy() {
	case BalanceHash:
		return nil
	case BalanceSticky:
		if err := reuseport.StickyAvailable(); err != nil {
			return []error{&ConfigError{name("balance", "WithBalance"), strconv.Quote(c.balance), "sticky is not available on this platform", err}}
		}
		if c.workers > reuseport.Buckets {
			return []error{&ConfigError{name("balance", "WithBalance"), strconv.Quote(c.balance),
				fmt.Sprintf("sticky spreads clients over %d buckets: use at most %d workers with it, or hash", reuseport.Buckets, reuseport.Buckets), nil}}
		}
		return nil
	case BalanceShared:
		if err := reuseport.SharedAvailable(); err != nil {
			return []error{&ConfigError{name("balance", "WithBalance"), strconv.Quote(c.balance), "shared is not available on this platform", err}}
		}
		return nil
	}
	return []error{&ConfigError{name("balance", "WithBalance"), strconv.Quote(c.balance),
		fmt.Sprintf("want one of %s", strings.Join(balancePolicies, ", ")), nil}}
}
