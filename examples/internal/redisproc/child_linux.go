package redisproc

import (
	"os/exec"
	"syscall"
)

// DieWithParent makes cmd's process killed when this process dies,
// however it dies, so that no redis-server or child service outlives a
// killed load test.
func DieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
