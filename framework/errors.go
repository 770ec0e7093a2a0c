package framework

import (
	"github.com/broodhq/brood/internal/child"
	"github.com/broodhq/brood/internal/master"
)

// ErrStart is wrapped by the error Run returns when the cluster could not
// start: a child failed before it was ready, or the address was taken.
var ErrStart = master.ErrStart

// ErrCrashLoop is wrapped by the error Run returns when every worker slot
// crashed too often to be restarted, leaving nothing to serve.
var ErrCrashLoop = master.ErrCrashLoop

// ErrNoMaster is returned by Run in a process that has BROOD_ROLE set but
// was not started by a brood master.
var ErrNoMaster = child.ErrNoMaster

// ErrMasterGone is returned by Run in a child whose master has exited.
var ErrMasterGone = child.ErrMasterGone
