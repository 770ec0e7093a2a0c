package framework

import "github.com/broodhq/brood/internal/proc"

func runtimeCPUs() int { return proc.CPUs() }
