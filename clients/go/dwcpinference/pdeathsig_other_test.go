//go:build !linux

// Elsewhere there is no parent-death signal; TestMain's SIGTERM is the only stop.

package dwcpinference

import "os/exec"

func setParentDeathSignal(*exec.Cmd) {}
