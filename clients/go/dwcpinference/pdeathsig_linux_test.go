// Linux: the live server dies with the test binary even if the binary is killed before TestMain stops it.

package dwcpinference

import (
	"os/exec"
	"syscall"
)

func setParentDeathSignal(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}
